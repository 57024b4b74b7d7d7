/* Faults of memory.img as a file (kernel-b cannot boot). */
import { HANDOFF_MEMORY_IMG, PAGE_SIZE } from "@khosim/shared/abi";
import { hex } from "@khosim/shared/lib";
import type { FaultContext } from "./context.js";
import { UNUSABLE, type Fault } from "./fault.js";

export const IMAGE_FAULTS: readonly Fault[] = [
  {
    kind: "image-short",
    group: "image",
    description: "memory.img one page shorter than the RAM /memory describes",
    expect: UNUSABLE(["memory.img", "image shorter than RAM"]),
    apply(ctx: FaultContext) {
      const { size } = ctx.boot().ram;
      const was = ctx.imageFileSize();
      ctx.store.truncateImage(size - PAGE_SIZE);
      ctx.details.push({ file: HANDOFF_MEMORY_IMG, offset: hex(size - PAGE_SIZE), field: "file size", old: hex(was), new: hex(size - PAGE_SIZE) });
      return { reasonIncludes: [`size ${hex(size - PAGE_SIZE)} does not match RAM size ${hex(size)}`] };
    },
  },
  {
    kind: "image-missing",
    group: "image",
    description: "memory.img deleted",
    expect: UNUSABLE(["memory.img", "cannot open: ENOENT"]),
    apply(ctx: FaultContext) {
      const was = ctx.imageFileSize();
      ctx.store.deleteImage();
      ctx.details.push({ file: HANDOFF_MEMORY_IMG, offset: "0x0", field: "whole file", old: `${hex(was)} bytes`, new: "deleted" });
    },
  },
];

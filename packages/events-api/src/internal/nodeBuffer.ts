/**
 * What the page decoder uses of `node:buffer`, when the runtime has it: native (SIMD) UTF-8 and
 * ASCII validation and byte search, each a large multiple of what a JavaScript loop over a page
 * of bytes costs. Reached without a static import, so that the library still loads where there is
 * no `node:buffer` (a browser, a Node before 20.16): `process.getBuiltinModule` exists for exactly
 * this. Callers keep a portable fallback for when it is undefined.
 */

/** The part of a Node `Buffer` used here. */
export interface BufferView {
  toString(encoding: "latin1", start: number, end: number): string
  indexOf(value: number | Uint8Array, byteOffset?: number): number
}

/** The part of `node:buffer` used here. */
export interface NodeBuffer {
  readonly isUtf8: (input: Uint8Array) => boolean
  readonly isAscii: (input: Uint8Array) => boolean
  readonly Buffer: { from(buffer: ArrayBufferLike, byteOffset: number, length: number): BufferView }
}

export const nodeBuffer: NodeBuffer | undefined = (() => {
  try {
    const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    const module = process?.getBuiltinModule?.("node:buffer") as Partial<NodeBuffer> | undefined
    return typeof module?.isUtf8 === "function" && typeof module.isAscii === "function" &&
        typeof module.Buffer?.from === "function"
      ? module as NodeBuffer
      : undefined
  } catch {
    return undefined
  }
})()

/** A `Buffer` over the same memory as `bytes` (no copy). */
export const view = (native: NodeBuffer, bytes: Uint8Array): BufferView =>
  native.Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)

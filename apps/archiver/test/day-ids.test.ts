/**
 * A day's id set on its own (`internal/dayIds.ts`): what it remembers of each id survives its
 * tables' growth, a later value replaces an earlier one, and a set reused for another day has
 * forgotten the last one.
 */
import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import { DayIds, fitsPosition, unpackPosition } from "../src/internal/dayIds.js"
import { hashKey } from "../src/internal/idKey.js"

const seed = new Uint32Array([0x12345678, 0x9abcdef0, 0x0fedcba9, 0x87654321])
const sha = (text: string) => createHash("sha256").update(text).digest()

const get = (ids: DayIds, id: string) => {
  hashKey(id, seed)
  return ids.get()
}
const setPosition = (ids: DayIds, id: string, offset: number, length: number) => {
  hashKey(id, seed)
  ids.setPosition(offset, length)
}
const setDigest = (ids: DayIds, id: string, digest: Uint8Array) => {
  hashKey(id, seed)
  ids.setDigest(digest)
}

describe("DayIds", () => {
  it("remembers positions and digests through its tables' growth", () => {
    const ids = new DayIds()
    const N = 20_000
    for (let i = 0; i < N; i++) {
      if (i % 3 === 0) setDigest(ids, `id-${i}`, sha(`line ${i}`))
      else setPosition(ids, `id-${i}`, i * 1000, 100 + (i % 900))
    }
    expect(ids.size).toBe(N)
    for (let i = 0; i < N; i++) {
      const seen = get(ids, `id-${i}`)
      if (i % 3 === 0) {
        expect(seen).toBeInstanceOf(Uint8Array)
        expect(Buffer.from(seen as Uint8Array).equals(sha(`line ${i}`))).toBe(true)
      } else {
        expect(unpackPosition(seen as number)).toEqual({ offset: i * 1000, length: 100 + (i % 900) })
      }
    }
    for (let i = 0; i < 5_000; i++) expect(get(ids, `absent-${i}`)).toBeUndefined()
  })

  it("replaces what it remembers of an id set again, either way", () => {
    const ids = new DayIds()
    setPosition(ids, "a", 10, 20)
    setDigest(ids, "a", sha("a"))
    expect(Buffer.from(get(ids, "a") as Uint8Array).equals(sha("a"))).toBe(true)
    setPosition(ids, "a", 30, 40)
    expect(unpackPosition(get(ids, "a") as number)).toEqual({ offset: 30, length: 40 })
    expect(ids.size).toBe(1)
  })

  it("forgets everything when reset for another day, and works as new", () => {
    const ids = new DayIds()
    for (let i = 0; i < 3_000; i++) setDigest(ids, `old-${i}`, sha(`old ${i}`))
    ids.ino = 42
    expect(ids.reset()).toBe(ids)
    expect([ids.size, ids.ino]).toEqual([0, undefined])
    for (let i = 0; i < 3_000; i++) expect(get(ids, `old-${i}`)).toBeUndefined()
    setDigest(ids, "new", sha("new"))
    setPosition(ids, "other", 5, 6)
    expect(Buffer.from(get(ids, "new") as Uint8Array).equals(sha("new"))).toBe(true)
    expect(unpackPosition(get(ids, "other") as number)).toEqual({ offset: 5, length: 6 })
    expect(get(ids, "old-0")).toBeUndefined()
  })

  it("packs positions exactly up to their limits, and says when one does not fit", () => {
    const ids = new DayIds()
    const offset = 2 ** 33 - 1
    const length = 2 ** 20 - 1
    expect(fitsPosition(offset, length)).toBe(true)
    expect(fitsPosition(2 ** 33, 1)).toBe(false)
    expect(fitsPosition(0, 2 ** 20)).toBe(false)
    setPosition(ids, "edge", offset, length)
    expect(unpackPosition(get(ids, "edge") as number)).toEqual({ offset, length })
  })
})

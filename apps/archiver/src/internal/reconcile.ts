/**
 * Brings the persistent id index up to date with what is on disk when the sink opens.
 *
 * @internal
 */
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { ArchiveUnsafe, ArchiveWriteError } from "../ArchiveError.js"
import { dayStorage } from "./archiveFs.js"
import * as DayTally from "./dayTally.js"
import { trySafeWrite } from "./errors.js"
import * as IdIndex from "./idIndex.js"
import { extractId, forEachLineBytes } from "./lines.js"
import { lstatIfExists } from "./safeFs.js"

/**
 * Brings the id index up to date with `events/`: every sealed segment not yet indexed, and the
 * part of each open day file past what was indexed (all of it when the file was replaced, e.g.
 * after sealing), counting what that part holds into the day's mark (for `status`). Ids found
 * under two days (archived before this check existed) are reported.
 */
export const reconcile = (eventsDir: string, index: IdIndex.IdIndex): Effect.Effect<void, ArchiveWriteError | ArchiveUnsafe> =>
  trySafeWrite(eventsDir, "indexing", async (signal) => {
    let twice = 0
    let changed = false
    // The in-memory table stays bounded over a rebuild: a sync point between files when it is full.
    const syncIfFull = async () => {
      if (index.full()) await index.sync()
    }
    for (const d of await dayStorage(eventsDir)) {
      const mark = index.mark(d.day)
      const onId = (line: Buffer) => {
        const id = extractId(line)
        if (id === undefined) return
        const other = index.insert(id, d.day)
        if (other !== undefined && other !== d.day) twice++
      }
      const known = new Set(mark?.segments ?? [])
      for (const seg of d.segments) {
        if (known.has(seg)) continue
        await forEachLineBytes(path.join(eventsDir, seg), onId, { signal, gzip: true })
        changed = true
        await syncIfFull()
      }
      let open: IdIndex.OpenMark | undefined = undefined
      if (d.open !== undefined) {
        const file = path.join(eventsDir, d.open)
        const st = await lstatIfExists(file)
        // Read from where the mark ends; from the start when the file was replaced (sealed since,
        // even under the same inode number), or when the mark does not say what its part holds
        // (re-inserting ids is harmless).
        const covered = IdIndex.openMarkFor(mark, d.segments, st)
        const prior = covered?.tally
        const from = prior === undefined ? 0 : covered!.size
        if (st !== undefined && from < st.size) changed = true
        if (st !== undefined && from > 0 && from >= st.size) open = covered
        else if (st !== undefined) {
          // What the part read holds, added to what the mark says the part before holds.
          const { size, tally } = await DayTally.readOn(d.day, file, prior, from, signal, onId)
          open = { ino: st.ino, size, tally }
        }
        await syncIfFull()
      }
      const segmentsChanged = d.segments.length !== known.size
      // `open` is the mark's own object when nothing was read, else a new one (or none now).
      if (changed || segmentsChanged || open !== mark?.open) {
        index.setMark(d.day, { segments: d.segments, open })
        changed = true
      }
    }
    if (changed) await index.sync()
    return twice
  }).pipe(
    Effect.tap((twice) =>
      twice > 0
        ? Effect.logWarning(
          `${twice} event id(s) are archived under two days (written before such copies were detected); ` +
            "the later copies stay where they are"
        ).pipe(Effect.annotateLogs({ ids: twice }))
        : Effect.void
    ),
    Effect.asVoid
  )

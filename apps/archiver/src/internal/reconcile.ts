/**
 * Brings the persistent id index up to date with what is on disk when the sink opens.
 *
 * @internal
 */
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { ArchiveUnsafe, ArchiveWriteError } from "../ArchiveError.js"
import { dayStorage } from "./archiveFs.js"
import { trySafeWrite } from "./errors.js"
import * as IdIndex from "./idIndex.js"
import { extractId, forEachLineBytes } from "./lines.js"
import { lstatIfExists } from "./safeFs.js"

/**
 * Brings the id index up to date with `events/`: every sealed segment not yet indexed, and the
 * part of each open day file past what was indexed (all of it when the file was replaced, e.g.
 * after sealing). Ids found under two days (archived before this check existed) are reported.
 */
export const reconcile = (eventsDir: string, index: IdIndex.IdIndex): Effect.Effect<void, ArchiveWriteError | ArchiveUnsafe> =>
  trySafeWrite(eventsDir, "indexing", async (signal) => {
    let twice = 0
    let changed = false
    for (const d of await dayStorage(eventsDir)) {
      const mark = index.mark(d.day)
      const onLine = (line: Buffer) => {
        const id = extractId(line)
        if (id === undefined) return
        const other = index.insert(IdIndex.keyOf(id), d.day)
        if (other !== undefined && other !== d.day) twice++
      }
      const known = new Set(mark?.segments ?? [])
      for (const seg of d.segments) {
        if (known.has(seg)) continue
        await forEachLineBytes(path.join(eventsDir, seg), onLine, { signal, gzip: true })
        changed = true
      }
      let open: IdIndex.DayMark["open"] = undefined
      if (d.open !== undefined) {
        const file = path.join(eventsDir, d.open)
        const st = await lstatIfExists(file)
        const from = st !== undefined && mark?.open !== undefined && mark.open.ino === st.ino && st.size >= mark.open.size
          ? mark.open.size
          : 0
        if (st !== undefined && from < st.size) changed = true
        const size = st === undefined ? 0 : await forEachLineBytes(file, onLine, { signal, start: from })
        if (st !== undefined) open = { ino: st.ino, size }
      }
      const segmentsChanged = d.segments.length !== known.size
      if (changed || segmentsChanged || mark?.open?.ino !== open?.ino || mark?.open?.size !== open?.size) {
        index.setMark(d.day, { segments: d.segments, open })
        changed = true
      }
    }
    if (changed) index.sync()
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

/**
 * The one line a person reads about a failure: `main.ts` prints it after `webex-archiver: `, and
 * `ArchiveSession` keeps it in `state/last-error.json` for `status`. A module of its own so that
 * the error path of a command refused at parse time loads no HTTP client.
 */
import { EventsApiError } from "@webex-compliance/events-api"
import * as Schema from "effect/Schema"
import { safeText } from "./Redaction.js"

const isApiError = Schema.is(EventsApiError.EventsApiError)

/**
 * One line a person can act on, for any failure: its (computed) message, what usually fixes it,
 * the tracking id Cisco support asks for; known secrets cut out, control characters escaped.
 */
export const messageOf = (e: unknown): string => {
  if (!(e instanceof Error)) return safeText(String(e))
  const parts = [e.message]
  if (isApiError(e)) {
    if (e._tag === "Forbidden" && !e.message.includes(e.hint)) parts.push(e.hint)
    if (e._tag === "TransportError") parts.push("(no answer from the API after every retry: check the network, DNS and --base-url)")
    if (e.trackingId !== undefined) parts.push(`(trackingId ${e.trackingId})`)
  }
  return safeText(parts.join(" "))
}

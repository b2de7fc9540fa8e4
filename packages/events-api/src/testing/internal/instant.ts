/**
 * The fake server's reading of ISO-8601 instants, for `from`/`to` and for stored `created` values.
 *
 * @internal
 */

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

/** Epoch ms of an ISO-8601 date-time (either form the service uses), or undefined. */
export const parseInstant = (text: string | undefined): number | undefined => {
  if (text === undefined || !ISO_8601.test(text)) return undefined
  const ms = Date.parse(text.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"))
  return Number.isNaN(ms) ? undefined : ms
}

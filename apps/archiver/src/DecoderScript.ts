/**
 * Where the page decoder thread's script is (`PageSorter.layerWorker`): the CLI's entry provides
 * its bundle's own `sortWorker.mjs`. Without it, as in tests that run the sources, pages are
 * decoded on the main thread. A module of its own so that the entry can name the script without
 * loading the library, which `--help` never needs.
 */
import * as Context from "effect/Context"

export class DecoderScript extends Context.Tag("@webex-compliance/archiver/DecoderScript")<DecoderScript, URL>() {}

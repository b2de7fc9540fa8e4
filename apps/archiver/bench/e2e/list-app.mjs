// The same program (listProgram.mjs) as an application bundled for deployment runs it: run.mjs
// bundles this file with esbuild, as apps/archiver/scripts/build.mjs bundles the archiver, so the
// library and the parts of Effect it uses are one file, parsed once, with nothing unused loaded.
// It tells a library user what `list()` costs when they ship their app that way.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { EventsApi } from "@webex-compliance/events-api"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { listAll } from "./listProgram.mjs"

await listAll({ EventsApi, Effect, Layer, Redacted, Stream, NodeHttpClient })

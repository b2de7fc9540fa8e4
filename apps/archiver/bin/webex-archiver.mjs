#!/usr/bin/env node
// Runs the TypeScript sources directly (no build step to forget): tsx registers its loader first.
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")

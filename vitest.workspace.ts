// Every project's tests run through this file: `pnpm test` at the root.
export default ["packages/*", "apps/*"]

// Every project's tests run through this file: `pnpm test` at the root (`pnpm test:unit` leaves
// out the end-to-end files, named e2e-*.test.ts).
export default ["packages/*", "apps/*"]

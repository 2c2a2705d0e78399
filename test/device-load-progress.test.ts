import { describe, expect, it } from "vitest";
import { LOAD_PENDING_KEY, LOAD_READ_KEY, LOAD_ROWS_KEY, loadProgressNote } from "../src/device-load-progress";

describe("the load of the device records at start, as `pusher devices` tells it", () => {
  it("says how many rows of how many the load has read while it runs", () => {
    expect(loadProgressNote({ [LOAD_PENDING_KEY]: 2, [LOAD_ROWS_KEY]: 1_000_000, [LOAD_READ_KEY]: 31_500 })).toBe(
      "the device records are still loading (31500 of 1000000 rows read)",
    );
    // Before its first page, or when the count failed.
    expect(loadProgressNote({ [LOAD_PENDING_KEY]: 2, [LOAD_ROWS_KEY]: -1 })).toBe(
      "the device records are still loading (0 rows read)",
    );
  });

  it("says the records are not loaded while the database does not answer", () => {
    expect(loadProgressNote({ [LOAD_PENDING_KEY]: 1 })).toMatch(/not loaded: the device database does not answer/);
  });

  it("says nothing once they are loaded, or from a plugin that never said", () => {
    expect(loadProgressNote({ [LOAD_PENDING_KEY]: 0, [LOAD_ROWS_KEY]: 10, [LOAD_READ_KEY]: 10 })).toBeNull();
    expect(loadProgressNote({})).toBeNull();
  });
});

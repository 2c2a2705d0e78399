// How far the load of the device records at start has come: items of htable pusher_state the plugin sets
// (src/plugin/device-store.ts) and `pusher devices` reads over the ctl socket, so that an AOR the load has not reached
// is not shown as one without devices. Pure and ES5: the plugin bundles it too.

/** 2 while the load at start runs, 1 once it failed (the timer loads the records when the database answers), 0 when
 * they are loaded. */
export const LOAD_PENDING_KEY = "devices_load_pending";
/** The rows in the database when the load began (count(*): rows past retention included, which it skips). */
export const LOAD_ROWS_KEY = "devices_load_rows";
/** The rows the load has read so far (set before each page it reads). */
export const LOAD_READ_KEY = "devices_load_read";

/** Where the load stands, from pusher_state's items: null when every record is loaded (or the plugin never said). */
export function loadProgressNote(state: { [key: string]: number }): string | null {
  const pending = state[LOAD_PENDING_KEY];
  if (pending === 1) return "the device records are not loaded: the device database does not answer";
  if (pending !== 2) return null;
  const rows = state[LOAD_ROWS_KEY];
  const read = state[LOAD_READ_KEY] || 0;
  return (
    "the device records are still loading (" +
    (rows >= 0 ? read + " of " + rows + " rows read" : read + " rows read") +
    ")"
  );
}

// Text from the network (User-Agents, instance ids, app ids, Call-IDs) ends up in log lines and on terminals: a CR
// or LF there starts a forged log line, an ESC drives the operator's terminal. Every control character is written
// as `\xNN` instead: C0, DEL, and C1 (ECMA-48 §5.3 gives 0x9B the meaning of ESC [). Pure and ES5: the plugin's log
// helper (src/plugin/log.ts), the helper's logger (src/helper/logger.ts) and `pusher devices` share it.

const CONTROL_CHARACTERS = /[\x00-\x1f\x7f-\x9f]/g;

function escaped(character: string): string {
  const code = character.charCodeAt(0);
  return (code < 0x10 ? "\\x0" : "\\x") + code.toString(16);
}

/** `text` with every control character written as `\xNN`: one line, safe to print. */
export function escapeControlCharacters(text: string): string {
  return text.replace(CONTROL_CHARACTERS, escaped);
}

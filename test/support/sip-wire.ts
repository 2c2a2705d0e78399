// Reading SIP as the tests' own clients receive it: a header's value, and messages out of a stream transport
// (TCP, TLS), where each ends after its header block plus Content-Length bytes (RFC 3261 §18.3) and keep-alive
// CRLFs between them (RFC 5626 §4.4.1) are skipped.

/** The value of the first `name` header (a regex alternation such as "To|t"), or "". */
export function headerOf(message: string, name: string): string {
  return new RegExp(`^(?:${name})[ \\t]*:[ \\t]*(.*)$`, "im").exec(message)?.[1].trim() ?? "";
}

/** The complete messages at the start of `buffer`, and what is left of it (a message still arriving). */
export function splitSipStream(buffer: string): { messages: string[]; rest: string } {
  const messages: string[] = [];
  let rest = buffer;
  for (;;) {
    rest = rest.replace(/^(\r\n)+/, "");
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) break;
    const length = Number(headerOf(rest.slice(0, end + 4), "Content-Length|l") || 0);
    if (rest.length < end + 4 + length) break;
    messages.push(rest.slice(0, end + 4 + length));
    rest = rest.slice(end + 4 + length);
  }
  return { messages, rest };
}

// Kazoo's own sample Contact has a space inside the pn-tok value, which Kamailio's Contact parser refuses
// (the REGISTER would fail with 500). repairContact percent-encodes whitespace inside header param values
// so the REGISTER can be saved; parse-contact URL-decodes it again, so the token is stored as the phone sent it.
// Pure, no KSR: route PUSHER_INTERNAL_REPAIR_CONTACT runs it through register-before-save.ts repairContactHeader.

/** The repaired Contact value, or null when nothing needed repair. */
export function repairContact(value: string): string | null {
  let result = "";
  let changed = false;
  let quoted = false;
  let depth = 0;
  let inValue = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charAt(i);
    if (quoted) {
      if (c === "\\" && i + 1 < value.length) {
        result += c + value.charAt(++i);
        continue;
      }
      if (c === '"') quoted = false;
      result += c;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === "<") depth++;
    else if (c === ">") depth = depth > 0 ? depth - 1 : 0;
    else if (depth === 0 && (c === ";" || c === ",")) inValue = false;
    else if (depth === 0 && c === "=") inValue = true;
    else if (depth === 0 && inValue && (c === " " || c === "\t")) {
      let end = i;
      while (end < value.length && (value.charAt(end) === " " || value.charAt(end) === "\t")) end++;
      const next = end < value.length ? value.charAt(end) : "";
      const valueSoFar = result.substring(result.lastIndexOf("=") + 1);
      // Whitespace between two value characters is part of the value; around delimiters it is just space.
      if (next && next !== ";" && next !== "," && valueSoFar.replace(/\s/g, "") !== "") {
        // Each character encoded on its own, so the token decodes to exactly what the phone sent.
        for (let j = i; j < end; j++) result += value.charAt(j) === "\t" ? "%09" : "%20";
        changed = true;
        i = end - 1;
        continue;
      }
    }
    result += c;
  }
  return changed ? result : null;
}

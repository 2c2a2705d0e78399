// Objects used as maps (parsed JSON, Contact params) may carry keys like `__proto__` or `constructor`: only an own
// key counts, never an inherited one.

// Looked up once: Duktape resolves `Object` through every scope between here and the global object at each use.
const hasOwnProperty = Object.prototype.hasOwnProperty;

export function has(object: object, key: string): boolean {
  return hasOwnProperty.call(object, key);
}

// Objects used as maps (parsed JSON, Contact params) may carry keys like `__proto__` or `constructor`: only an own
// key counts, never an inherited one.

export function has(object: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

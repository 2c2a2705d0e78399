// Built-ins Duktape 2.7 has beyond ES5 (observed in Kamailio 5.6's app_jsdt). lib is ES5, so anything not
// declared here (Map, Set, Promise, Array#find, String#padStart…) fails to compile instead of at run time.
interface String {
  startsWith(search: string, position?: number): boolean;
  endsWith(search: string, length?: number): boolean;
}
interface ObjectConstructor {
  assign<T extends object, U>(target: T, source: U): T & U;
}

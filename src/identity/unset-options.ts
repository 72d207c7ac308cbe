// Config sections arrive with `null` for every option that is not set (src/config); the clients take them as they
// are and treat null like an absent option.

/** T with null removed from every property type. */
export type WithoutNulls<T> = { readonly [K in keyof T]: Exclude<T[K], null> };

export function withoutNulls<T extends object>(options: T): WithoutNulls<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== null)) as WithoutNulls<T>;
}

// oslo.config expands "$name", "${name}" and "${section.name}" in option values (Python string.Template with
// safe_substitute); "$$" and "\$" stand for a literal "$". Nova reads a password "pa$$word" as "pa$word", and so
// must we.
const TEMPLATE = /\$(?:(\$)|([_a-z][._a-z0-9]*)|\{([_a-z][._a-z0-9]*)\})/gi;

/**
 * Expands the references in `value`. `resolve` receives the reference as written ("state_path", "glance.num_retries")
 * and returns its value, or throws. A "$" that starts no reference is kept, as safe_substitute does.
 */
export function substitute(value: string, resolve: (reference: string) => string): string {
  return value
    .replaceAll('\\$', '$$$$')
    .replace(TEMPLATE, (_match, escaped: string | undefined, named: string | undefined, braced: string | undefined) =>
      escaped !== undefined ? '$' : resolve((named ?? braced) as string),
    );
}

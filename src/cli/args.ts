// A small, strict argument parser: `--name value`, `--name=value`, boolean
// flags, positionals. Unknown options are usage errors (exit 2).

export class UsageError extends Error {}

export interface ParsedArgs {
  options: Map<string, string | true>;
  positionals: string[];
}

/** `spec` maps each allowed option name to whether it takes a value. */
export function parseArgs(argv: string[], spec: Record<string, 'value' | 'flag'>): ParsedArgs {
  const options = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (!arg.startsWith('--') || arg === '-') { positionals.push(arg); continue; }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === 'flag') {
      if (eq !== -1) throw new UsageError(`option --${name} takes no value`);
      options.set(name, true);
    } else if (eq !== -1) {
      options.set(name, arg.slice(eq + 1));
    } else {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`option --${name} needs a value`);
      options.set(name, value);
    }
  }
  return { options, positionals };
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function requireOption(args: ParsedArgs, name: string): string {
  const v = stringOption(args, name);
  if (v === undefined) throw new UsageError(`missing --${name}`);
  return v;
}

/** `--name` as one of `choices`, the first when not given; any other value is a usage error. */
export function choiceOption<T extends string>(args: ParsedArgs, name: string, choices: readonly [T, ...T[]]): T {
  const v = stringOption(args, name) ?? choices[0];
  if (!(choices as readonly string[]).includes(v)) {
    throw new UsageError(`--${name} must be ${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}, not "${v}"`);
  }
  return v as T;
}

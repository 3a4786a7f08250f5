// `${…}` placeholders in filters and custom masks. Only these names exist;
// anything else is a load error rather than a silently empty literal.

export const userPlaceholder = /^user\.(?:name|org|groups|attributes\.[A-Za-z_][A-Za-z0-9_]*)$/;

const allowedText = '${user.name}, ${user.org}, ${user.groups} or ${user.attributes.<name>}';

/** Problems with the placeholders of `text`; `column` allows `${column}` (custom masks). */
export function placeholderProblems(text: string, opts: { column: boolean }): string[] {
  const problems: string[] = [];
  let at = text.indexOf('${');
  while (at !== -1) {
    const end = text.indexOf('}', at);
    if (end === -1) {
      problems.push(`unclosed placeholder "\${" at character ${at + 1}`);
      break;
    }
    const name = text.slice(at + 2, end);
    const ok = userPlaceholder.test(name) || (opts.column && name === 'column');
    if (!ok) {
      problems.push(`unknown placeholder \${${name}} at character ${at + 1}: use ${opts.column ? '${column}, ' : ''}${allowedText}`);
    }
    at = text.indexOf('${', end);
  }
  return problems;
}

// Grouped horizontal bars on a linear scale as a self-contained SVG: one
// group per row of a bench table (a protocol, a client count), one bar per
// contender, so a README reader sees the ratios at a glance.

export interface BarGroup { label: string; bars: Array<{ label: string; value: number }> }

const colours: Record<string, string> = { direct: '#6c757d', pgbouncer: '#e9c46a', pgveil: '#2a9d8f' };
const spare = ['#264653', '#f4a261', '#e76f51', '#8ab17d'];

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function barChart(groups: BarGroup[], title: string, unit = ''): string {
  const left = 110, right = 100, top = 44, barH = 18, gap = 6, groupGap = 30, width = 760;
  const plotW = width - left - right;
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const x = (v: number) => Math.round((left + (v / max) * plotW) * 10) / 10;
  const height = top + groups.reduce((sum, g) => sum + g.bars.length * (barH + gap) + groupGap, 0) + 10;
  const colour = new Map<string, string>();
  const colourOf = (label: string) => {
    if (!colour.has(label)) colour.set(label, colours[label] ?? spare[colour.size % spare.length]);
    return colour.get(label)!;
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  let y = top;
  for (const g of groups) {
    out.push(`<text x="${left}" y="${y + 2}" font-weight="bold">${escape(g.label)}</text>`);
    y += 8;
    for (const b of g.bars) {
      const shown = b.value >= 100 ? b.value.toFixed(0) : b.value.toPrecision(3);
      out.push(`<text x="${left - 6}" y="${y + barH - 5}" text-anchor="end">${escape(b.label)}</text>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, x(b.value) - left)}" height="${barH}" fill="${colourOf(b.label)}"/>`,
        `<text x="${x(b.value) + 4}" y="${y + barH - 5}" fill="#333">${shown}${escape(unit)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  out.push('</svg>');
  return out.join('\n');
}

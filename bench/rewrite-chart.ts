// The rewrite bench's chart: p50/p99 latencies spanning four orders of
// magnitude (a cache hit in µs, a miss of a big statement in ms), so a log
// scale, where bench/chart.ts's linear bars would hide the hits.

/** Horizontal bars on a log scale: p50 solid, p99 as a lighter extension, one group per statement. */
export function latencyChart(groups: Array<{ label: string; bars: Array<{ label: string; p50: number; p99: number }> }>): string {
  const colours: Record<string, string> = { hit: '#2a9d8f', miss: '#e76f51', parse: '#6c757d' };
  const left = 70, right = 110, top = 44, barH = 18, gap = 6, groupGap = 34, width = 760;
  const plotW = width - left - right;
  const all = groups.flatMap((g) => g.bars.flatMap((b) => [b.p50, b.p99]));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.01, Math.min(...all)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
  const x = (v: number) => Math.round((left + (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotW) * 10) / 10;
  const height = top + groups.length * (3 * (barH + gap) + groupGap) + 30;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">pgveil rewrite latency, µs (log scale): p50 solid, p99 light</text>`,
  ];
  for (let d = lo; d <= hi; d *= 10) {
    out.push(`<line x1="${x(d)}" y1="${top - 8}" x2="${x(d)}" y2="${height - 24}" stroke="#ddd"/>`,
      `<text x="${x(d)}" y="${height - 10}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toFixed(2)}</text>`);
  }
  let y = top;
  for (const g of groups) {
    out.push(`<text x="${left}" y="${y + 2}" font-weight="bold">${esc(g.label)}</text>`);
    y += 8;
    for (const b of g.bars) {
      const c = colours[b.label] ?? '#333';
      out.push(`<text x="${left - 6}" y="${y + barH - 5}" text-anchor="end">${b.label}</text>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, Math.round((x(b.p99) - left) * 10) / 10)}" height="${barH}" fill="${c}" opacity="0.35"/>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, Math.round((x(b.p50) - left) * 10) / 10)}" height="${barH}" fill="${c}"/>`,
        `<text x="${x(b.p99) + 4}" y="${y + barH - 5}" fill="#333">${b.p50.toFixed(1)} / ${b.p99.toFixed(1)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  out.push('</svg>');
  return out.join('\n');
}

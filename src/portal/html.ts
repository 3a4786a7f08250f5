// The portal's page frame and HTML escaping (every value put into a page goes through `escapeHtml`).
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em}label{display:block;margin:1em 0 .2em}input{width:100%;padding:.4em}button{margin-top:1em;padding:.5em 1em}.problem{color:#a00}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}

import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const DOCS = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url))
const START = '<!-- npm run bench: peers, last run (start) -->'
const END = '<!-- npm run bench: peers, last run (end) -->'

/** Replaces the text between the two markers of docs/benchmarks.md with `section` (skipped without them). */
export function writeDocsSection (section: string): void {
  const text = readFileSync(DOCS, 'utf8')
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  if (start === -1 || end < start) return
  writeFileSync(DOCS, `${text.slice(0, start + START.length)}\n${section}\n${text.slice(end)}`)
}

import { readFileSync } from 'node:fs'

/** Bytes and object counts per (node type, constructor or string name) of a V8 heap snapshot. */
export type HeapSummary = Map<string, { count: number, bytes: number }>

interface HeapSnapshotFile {
  readonly snapshot: { readonly meta: { readonly node_fields: readonly string[], readonly node_types: readonly [readonly string[], ...unknown[]] } }
  readonly nodes: readonly number[]
  readonly strings: readonly string[]
}

/**
 * Sums the self size of every node of a .heapsnapshot by its kind: objects by
 * constructor name (`object Connection`), closures as `closure <function name>`,
 * strings, arrays and code by type only. Enough to say which kinds of objects a
 * held connection adds (bench/profile.ts --heap).
 */
export function summarizeHeap (file: string): HeapSummary {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshotFile
  const fields = parsed.snapshot.meta.node_fields
  const types = parsed.snapshot.meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const summary: HeapSummary = new Map()
  for (let i = 0; i < parsed.nodes.length; i += width) {
    const type = types[parsed.nodes[i + typeAt]!] ?? '?'
    const named = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'code' || type === 'array'
    const key = named ? `${type} ${parsed.strings[parsed.nodes[i + nameAt]!] ?? '?'}`.slice(0, 80) : type
    const entry = summary.get(key)
    const size = parsed.nodes[i + sizeAt]!
    if (entry === undefined) summary.set(key, { count: 1, bytes: size })
    else { entry.count += 1; entry.bytes += size }
  }
  return summary
}

/** What `after` has more of than `before`, per connection, largest first. */
export function heapGrowth (before: HeapSummary, after: HeapSummary, connections: number): Array<{ readonly kind: string, readonly countPer: number, readonly bytesPer: number }> {
  const rows: Array<{ kind: string, countPer: number, bytesPer: number }> = []
  for (const [kind, entry] of after) {
    const base = before.get(kind) ?? { count: 0, bytes: 0 }
    rows.push({ kind, countPer: (entry.count - base.count) / connections, bytesPer: (entry.bytes - base.bytes) / connections })
  }
  return rows.sort((a, b) => b.bytesPer - a.bytesPer)
}

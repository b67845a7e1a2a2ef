import { fmt, table } from './setup.js'

/** One figure of the issue-14 table, every peer measured in the same run. */
export interface PeerFigure {
  readonly figure: string
  readonly bareWs?: number
  readonly socketIo?: number
  readonly bareFastify?: number
  readonly gateway: number
  readonly unit: string
  readonly digits: number
  /** Which peer the ratio is taken against, and the target ratio. */
  readonly versus: 'bareWs' | 'socketIo' | 'bareFastify'
  readonly target: number
  /** `max`: the ratio must be at most the target (a cost); `min`: at least (a rate). */
  readonly direction: 'max' | 'min'
}

const PEER_NAMES = { bareWs: 'ws', socketIo: 'Socket.IO', bareFastify: 'bare' } as const

export interface RatedFigure extends PeerFigure {
  readonly ratio: number
  readonly met: boolean
}

export function rate (figure: PeerFigure): RatedFigure {
  const ratio = figure.gateway / (figure[figure.versus] ?? Number.NaN)
  return { ...figure, ratio, met: figure.direction === 'max' ? ratio <= figure.target : ratio >= figure.target }
}

/** The table as the issue writes it: figure, each peer, the gateway, its ratio and the target. */
export function peerTable (figures: readonly RatedFigure[]): string {
  const cell = (value: number | undefined, figure: PeerFigure): string => value === undefined ? '–' : `${fmt(value, figure.digits)}${figure.unit}`
  return table(['figure', 'bare `ws`', 'Socket.IO', 'bare Fastify', 'gateway', 'gateway ratio', 'target', 'met'], figures.map((figure) => [
    figure.figure,
    cell(figure.bareWs, figure),
    cell(figure.socketIo, figure),
    cell(figure.bareFastify, figure),
    cell(figure.gateway, figure),
    `${fmt(figure.ratio, 2)}× ${PEER_NAMES[figure.versus]}`,
    `${figure.direction === 'max' ? '≤' : '≥'} ${figure.target}× ${PEER_NAMES[figure.versus]}`,
    figure.met ? 'MET' : 'NOT MET'
  ]))
}

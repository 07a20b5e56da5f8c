// The run's chart: loss (left axis) and learning rate (right axis) per step, drawn by uPlot, with a
// marker at each request's decision step. Markers are buttons over the plot, so a pointer, the
// keyboard and a screen reader all reach their tooltip (old → new, or the reason).
import uPlot from 'uplot';
import { formatValue } from './format.js';

const SERIES = [
  { key: 'loss', label: 'loss', scale: 'loss', color: '--loss' },
  { key: 'learning_rate', label: 'learning rate', scale: 'lr', color: '--lr' },
  { key: 'eval_loss', label: 'eval loss', scale: 'loss', color: '--eval', points: true },
];

const MAX_POINTS = 4000; // what the chart keeps; the database keeps at most 2,000 per job

// Steps are whole numbers: ticks at 1, 2, 5, 10, 20, 50, … steps apart, never at 2.5.
const STEP_INCREMENTS = Array.from({ length: 9 }, (_, power) => [1, 2, 5].map((m) => m * 10 ** power)).flat();

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

export class RunChart {
  constructor(container) {
    this.container = container;
    this.points = new Map(); // step -> metrics
    this.markers = []; // {step, kind: applied|rejected|refused, text}
    this.layer = document.createElement('div');
    this.layer.className = 'markers';
    this.plot = null;
    this.frame = 0;
    new ResizeObserver(() => this.resize()).observe(container);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.rebuild());
  }

  /**
   * Merges points ({step, metrics}) into the chart; a later point for a step replaces the earlier one.
   * Past MAX_POINTS the older half is thinned to every other point, so a page left open on a long
   * run keeps a bounded chart (as the stored history is bounded).
   */
  add(points) {
    for (const { step, metrics } of points) {
      if (Number.isInteger(step) && metrics && typeof metrics === 'object') this.points.set(step, metrics);
    }
    if (this.points.size > MAX_POINTS) {
      const steps = [...this.points.keys()].sort((a, b) => a - b);
      steps.slice(0, steps.length / 2).filter((_, index) => index % 2).forEach((step) => this.points.delete(step));
    }
    this.schedule();
  }

  /** Replaces the markers ({step, kind: applied|rejected|refused, text}); unchanged ones keep their button (and focus). */
  setMarkers(markers) {
    const byKey = new Map(this.markers.map((marker) => [marker.key, marker]));
    this.markers = markers.map((marker) => {
      const key = `${marker.step}|${marker.kind}|${marker.text}`;
      return byKey.get(key) ?? { ...marker, key, button: markerButton(marker) };
    });
    // Only what changed is moved: a button taken out of the page, even to be put back, loses the focus (and the
    // page renders on every heartbeat of the trainer).
    const buttons = this.markers.map((marker) => marker.button);
    const kept = new Set(buttons);
    for (const child of [...this.layer.children]) if (!kept.has(child)) child.remove();
    buttons.forEach((button, index) => {
      if (this.layer.children[index] !== button) this.layer.insertBefore(button, this.layer.children[index] ?? null);
    });
    this.schedule();
  }

  get lastStep() {
    let last = null;
    for (const step of this.points.keys()) if (last === null || step > last) last = step;
    return last;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  data() {
    const steps = [...this.points.keys()].sort((a, b) => a - b);
    const columns = SERIES.map(({ key }) => steps.map((step) => {
      const value = this.points.get(step)[key];
      return typeof value === 'number' && Number.isFinite(value) ? value : null;
    }));
    return [steps, ...columns];
  }

  options() {
    const { width } = this.container.getBoundingClientRect();
    const axis = { stroke: css('--fg'), grid: { stroke: css('--grid') }, ticks: { stroke: css('--grid') } };
    const narrow = width < 500;
    this.narrow = narrow;
    const lastMarker = () => Math.max(0, ...this.markers.map((marker) => marker.step));
    return {
      width: Math.max(240, Math.floor(width)),
      height: Math.max(240, Math.min(360, Math.floor(width * 0.5))),
      scales: {
        x: { time: false, range: (u, min, max) => [Math.min(min ?? 0, 0), Math.max(max ?? 1, lastMarker(), 1)] },
        loss: { auto: true },
        lr: { auto: true },
      },
      axes: [
        { ...axis, label: 'step', incrs: STEP_INCREMENTS },
        { ...axis, scale: 'loss', label: 'loss', size: narrow ? 48 : 60 },
        { ...axis, scale: 'lr', side: 1, label: 'learning rate', size: narrow ? 64 : 80, grid: { show: false },
          values: (u, ticks) => ticks.map((tick) => tick.toExponential(1)) },
      ],
      series: [
        { label: 'step' },
        ...SERIES.map(({ label, scale, color, points }) => ({
          label, scale, stroke: css(color), width: points ? 0 : 2, spanGaps: true,
          points: { show: points ? true : undefined, size: 6, fill: css(color) },
          value: (u, value) => (value === null || value === undefined ? '—' : formatValue(value)),
        })),
      ],
      legend: { live: true },
      hooks: { draw: [(u) => this.placeMarkers(u)] },
    };
  }

  rebuild() {
    this.plot?.destroy();
    this.plot = null;
    this.draw();
  }

  draw() {
    const data = this.data();
    if (!this.plot) {
      this.plot = new uPlot(this.options(), data, this.container);
      this.plot.over.append(this.layer);
    } else {
      this.plot.setData(data);
    }
    // Away from the pointer, the legend reads the latest point rather than dashes.
    if (!(this.plot.cursor.left >= 0) && data[0].length) this.plot.setLegend({ idx: data[0].length - 1 });
    this.container.dataset.points = String(data[0].length); // what the tests (and a curious user) can read
    this.container.dataset.lastLearningRate = String(data[2].filter((v) => v !== null).at(-1) ?? '');
  }

  resize() {
    if (!this.plot) return;
    const wasNarrow = this.narrow;
    const options = this.options();
    if (this.narrow !== wasNarrow) this.rebuild(); // the axes' room changes with the width
    else this.plot.setSize({ width: options.width, height: options.height });
  }

  placeMarkers(plot) {
    const width = plot.over.clientWidth;
    for (const { step, button } of this.markers) {
      const x = plot.valToPos(step, 'x');
      button.style.left = `${x}px`;
      // The tooltip opens towards the wider side and wraps within it, so it stays inside the chart at any width.
      const left = x > width / 2;
      button.dataset.tipSide = left ? 'left' : 'right';
      button.style.setProperty('--tip-room', `${Math.floor(left ? x : width - x) - 12}px`);
    }
  }
}

// Escape hides the tooltip of the marker in focus or under the pointer, which stays where it is (WCAG 1.4.13);
// the next focus or hover shows it again. The key goes on to anything else that listens (a dialog's Escape).
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') document.querySelectorAll('.marker:focus, .marker:hover').forEach((marker) => marker.classList.add('tip-dismissed'));
});

function markerButton({ step, kind, text }) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `marker marker-${kind}`;
  button.dataset.step = String(step);
  button.dataset.kind = kind;
  button.setAttribute('aria-label', `step ${step}, ${kind}: ${text}`);
  const tip = document.createElement('span');
  tip.className = 'tip';
  tip.setAttribute('role', 'tooltip');
  tip.textContent = `step ${step} · ${kind}: ${text}`;
  button.append(tip);
  const undismiss = () => button.classList.remove('tip-dismissed');
  button.addEventListener('focus', undismiss);
  button.addEventListener('mouseenter', undismiss);
  return button;
}

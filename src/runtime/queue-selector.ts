/**
 * Queue selection for claims. Strict (RQ style): always try queues in the given order, so a later queue
 * runs only when earlier ones are empty. Weighted (Sidekiq style, `[["seo", 5], ["images", 3]]`): each
 * claim orders queues by a weighted random draw, so each queue is tried first with probability
 * proportional to its weight and none starves.
 */
import { ValidationError } from "../core/errors.js";
import { validateQueueName } from "../core/options.js";

/** Queue names in strict order, or `[name, weight]` pairs. */
export type QueueSpec = readonly string[] | readonly (readonly [string, number])[];

export class QueueSelector {
  readonly names: readonly string[];
  private readonly weights: readonly number[] | null;
  private readonly served: ReadonlySet<string>;

  constructor(
    spec: QueueSpec,
    private readonly random: () => number = Math.random,
  ) {
    if (!Array.isArray(spec) || spec.length === 0) {
      throw new ValidationError("INVALID_OPTION", "worker.queues must list at least one queue", {
        field: "worker.queues",
      });
    }
    const names: string[] = [];
    const weights: number[] = [];
    let weighted = false;
    spec.forEach((item: string | readonly [string, number], i: number) => {
      const field = `worker.queues[${i}]`;
      if (typeof item === "string") {
        names.push(validateQueueName(item, field));
        weights.push(1);
        return;
      }
      if (!Array.isArray(item) || item.length !== 2) {
        throw new ValidationError(
          "INVALID_OPTION",
          `${field} must be a queue name or a [name, weight] pair`,
          { field },
        );
      }
      const [name, weight] = item;
      if (!Number.isInteger(weight) || weight < 1) {
        throw new ValidationError(
          "INVALID_OPTION",
          `${field} weight must be a positive integer, got ${String(weight)}`,
          { field },
        );
      }
      weighted = true;
      names.push(validateQueueName(name, field));
      weights.push(weight);
    });
    if (new Set(names).size !== names.length) {
      throw new ValidationError("INVALID_OPTION", `worker.queues lists a queue twice: ${names.join(", ")}`, {
        field: "worker.queues",
      });
    }
    this.names = names;
    this.weights = weighted ? weights : null;
    this.served = new Set(names);
  }

  get mode(): "strict" | "weighted" {
    return this.weights ? "weighted" : "strict";
  }

  serves(queue: string): boolean {
    return this.served.has(queue);
  }

  /** The order in which the next claim tries the queues. */
  order(): readonly string[] {
    if (!this.weights || this.names.length === 1) return this.names;
    const names = [...this.names];
    const weights = [...this.weights];
    const out: string[] = [];
    let total = weights.reduce((a, b) => a + b, 0);
    while (names.length > 0) {
      let pick = this.random() * total;
      let index = 0;
      while (index < weights.length - 1 && pick >= (weights[index] as number)) {
        pick -= weights[index] as number;
        index++;
      }
      out.push(names[index] as string);
      total -= weights[index] as number;
      names.splice(index, 1);
      weights.splice(index, 1);
    }
    return out;
  }
}

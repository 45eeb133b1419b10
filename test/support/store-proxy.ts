/** A store that behaves like `real` except for the methods given: how tests make a store slow or refuse. */
import type { Store } from "../../src/store/contract.js";

export function overrideStore(real: Store, overrides: Partial<Store>): Store {
  return new Proxy(real, {
    get(target, prop) {
      const override = (overrides as Record<PropertyKey, unknown>)[prop];
      if (override !== undefined) return override;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

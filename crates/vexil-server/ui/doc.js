// The flag document's vocabulary, shared by the pages: what keys look like, the condition
// operators, and small helpers on its JSON (PRODUCT.md section 1).

/** Flag keys, segment and environment names (section 1.1); the forms use it for variant names too. */
export const KEY_RULE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Every condition operator, in the order the pickers list them (section 1.3). */
export const OPS = [
  'in', 'not_in', 'contains', 'starts_with', 'ends_with', 'matches', 'lt', 'lte', 'gt', 'gte',
  'semver_eq', 'semver_lt', 'semver_lte', 'semver_gt', 'semver_gte', 'before', 'after', 'exists', 'not_exists',
];
/** Operators that take no values. */
export const NO_VALUE_OPS = new Set(['exists', 'not_exists']);
/** Operators that compare text, and so take `ignore_case`. */
export const CASE_OPS = new Set(['in', 'not_in', 'contains', 'starts_with', 'ends_with', 'matches']);

export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
// Order-sensitive on purpose: the order of `variants` is part of a flag's meaning (bucketing).
export const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

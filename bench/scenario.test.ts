import { describe, expect, it } from 'vitest';
import { roundOrder } from './scenario.ts';

describe('the order of targets in a round', () => {
  it('keeps the baseline first and turns the others around every second round', () => {
    expect(roundOrder(4, 1)).toEqual([0, 1, 2, 3]);
    expect(roundOrder(4, 2)).toEqual([0, 3, 2, 1]);
    expect(roundOrder(4, 3)).toEqual([0, 1, 2, 3]);
    expect(roundOrder(2, 2)).toEqual([0, 1]);
    expect(roundOrder(1, 2)).toEqual([0]);
  });
});

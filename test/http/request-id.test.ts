// X-Request-Id: an edge's well-formed id is kept; otherwise one is minted, unique and well-formed.
import assert from 'node:assert/strict';
import { requestIdOf } from '../../src/http/request-id.ts';

describe('request ids', function () {
  it('keeps a well-formed id from the edge and replaces anything else', function () {
    assert.equal(requestIdOf('req-1.a:b_C'), 'req-1.a:b_C');
    for (const bad of ['', 'a b', 'x'.repeat(129), 'id\r\nX-Auth-User: admin', 'ü', undefined, ['a', 'b']]) {
      const id = requestIdOf(bad as string | string[] | undefined);
      assert.notEqual(id, bad);
      assert.match(id, /^[A-Za-z0-9._:-]{1,128}$/);
    }
  });

  it('mints distinct ids that the next hop accepts as they are', function () {
    const ids = new Set(Array.from({ length: 10_000 }, () => requestIdOf(undefined)));
    assert.equal(ids.size, 10_000);
    for (const id of [...ids].slice(0, 100)) assert.equal(requestIdOf(id), id);
  });
});

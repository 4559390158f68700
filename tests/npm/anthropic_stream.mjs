// A streaming Messages call with the real Anthropic Node SDK, configured only by the environment
// `vaultctl run --provider anthropic` sets (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY). Prints the
// text the stream carried, how many text deltas it came in and the stop reason, as one JSON line.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ maxRetries: 0, timeout: 60_000 });
const stream = await client.messages.create({
  model: 'test-model',
  max_tokens: 64,
  stream: true,
  messages: [{ role: 'user', content: 'count' }],
});
let text = '';
let deltas = 0;
let stop = null;
for await (const event of stream) {
  if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
    deltas += 1;
    text += event.delta.text;
  } else if (event.type === 'message_delta') {
    stop = event.delta.stop_reason;
  }
}
console.log(JSON.stringify({ text, deltas, stop }));

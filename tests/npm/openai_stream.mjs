// A streaming chat completion with the real OpenAI Node SDK, configured only by the environment
// `vaultctl run --provider openai` sets (OPENAI_BASE_URL, OPENAI_API_KEY). Prints the text the
// stream carried and how many chunks it came in, as one JSON line.
import OpenAI from 'openai';

const client = new OpenAI({ maxRetries: 0, timeout: 60_000 });
const stream = await client.chat.completions.create({
  model: 'test-model',
  stream: true,
  messages: [{ role: 'user', content: 'count' }],
});
let text = '';
let chunks = 0;
for await (const chunk of stream) {
  chunks += 1;
  text += chunk.choices[0]?.delta?.content ?? '';
}
console.log(JSON.stringify({ text, chunks }));

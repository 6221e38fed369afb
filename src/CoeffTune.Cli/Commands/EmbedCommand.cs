using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CoeffTune.Embeddings;
using CoeffTune.Models;
using CoeffTune.Text;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune embed --model minilm TEXT...</c>: sentence embeddings as the model's authors define them.</summary>
public static class EmbedCommand
{
    /// <summary>The options every command that embeds shares (embed, search).</summary>
    public sealed class EncoderOptions
    {
        public readonly Option<string> Model = new("--model") { Description = "model name (minilm, arctic-xs) or path to a .onnx/.safetensors file with its tokenizer (and sentence-transformers) files beside it", DefaultValueFactory = _ => "minilm" };
        public readonly Option<int?> MaxTokens = new("--max-tokens") { Description = "cut texts to this many tokens, special tokens included (default: the model's max_seq_length)" };
        public readonly Option<string?> Pooling = new("--pooling") { Description = "override the model's pooling: cls, mean, max, mean-sqrt-len, last-token, pooler" };
        public readonly Option<string?> Prompt = new("--prompt") { Description = "prefix each text with the model's prompt of this name (e.g. query)" };
        public readonly Option<string?> PromptText = new("--prompt-text") { Description = "prefix each text with this prompt" };

        public void AddTo(Command cmd)
        {
            foreach (var o in new Option[] { Model, MaxTokens, Pooling, Prompt, PromptText }) cmd.Options.Add(o);
        }

        public (SentenceEncoder Encoder, string? Prompt) Load(ParseResult p)
        {
            if (p.GetValue(MaxTokens) is <= 0) throw new ArgumentException($"--max-tokens must be positive, got {p.GetValue(MaxTokens)}");
            var pooling = p.GetValue(Pooling) is { } name ? SentencePooling.Parse(name, "--pooling") : (Pooling?)null;
            var encoder = SentenceEncoder.Load(p.GetValue(Model)!, p.GetValue(MaxTokens), pooling, Console.Error);
            try
            {
                string? prompt;
                try { prompt = encoder.ResolvePrompt(p.GetValue(Prompt), p.GetValue(PromptText)); }
                catch (ArgumentException e) { throw new ArgumentException($"--prompt: {e.Message}"); }
                return (encoder, prompt);
            }
            catch
            {
                encoder.Dispose();
                throw;
            }
        }
    }

    public static Command Create()
    {
        var options = new EncoderOptions();
        var json = new Option<bool>("--json") { Description = "print the full vectors, the pooling and the prompt as JSON" };
        var texts = new Argument<string[]>("texts") { Description = "texts to embed", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("embed", "Embed texts with a pretrained sentence encoder, pooled and normalised as the model defines it") { json, texts };
        options.AddTo(cmd);
        cmd.SetAction(p => Run(p, options, p.GetValue(json), p.GetValue(texts)!));
        return cmd;
    }

    private static int Run(ParseResult p, EncoderOptions options, bool asJson, string[] texts)
    {
        var modelName = p.GetValue(options.Model)!;
        var (encoder, prompt) = options.Load(p);
        using var _ = encoder;
        var embeddings = encoder.Embed(texts, prompt);
        var config = encoder.Config;
        var pooling = SentencePooling.Name(config.Pooling);
        if (asJson)
        {
            var doc = new
            {
                model = modelName, dims = encoder.Dimensions, pooling, include_prompt = config.IncludePrompt, normalized = config.Normalize,
                prompt, max_tokens = encoder.Tokenizer.MaxLength,
                embeddings = texts.Select((t, i) => new { text = t, tokens = embeddings[i].Tokens, truncated = embeddings[i].Truncated, vector = embeddings[i].Vector }),
            };
            Console.WriteLine(JsonSerializer.Serialize(doc, Cli.Json));
        }
        else
        {
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"{modelName}: {encoder.Dimensions} dims, {config.Describe()}" + (prompt is null ? "" : $"; prompt \"{TerminalText.Quote(prompt)}\""));
            for (int i = 0; i < texts.Length; i++)
            {
                var v = embeddings[i].Vector;
                double norm = Math.Sqrt(v.Sum(x => (double)x * x));
                var head = string.Join(", ", v.Take(5).Select(x => x.ToString("F4", inv)));
                Console.WriteLine($"[{i}] norm {norm.ToString("F4", inv)}  [{head}, ...]  {TerminalText.Quote(texts[i])}");
            }
            if (texts.Length > 1)
            {
                Console.WriteLine(config.Normalize ? "cosine similarity:" : "cosine similarity (of the normalised vectors):");
                var unit = embeddings.Select(e => EmbeddingIndex.Unit(e.Vector)).ToArray();
                Console.WriteLine("     " + string.Concat(Enumerable.Range(0, texts.Length).Select(j => $"{j,8}")));
                for (int i = 0; i < texts.Length; i++)
                    Console.WriteLine($"{i,4} " + string.Concat(Enumerable.Range(0, texts.Length).Select(j =>
                        EmbeddingIndex.Dot(unit[i], unit[j]).ToString("F4", inv).PadLeft(8))));
            }
        }
        for (int i = 0; i < texts.Length; i++)
            if (embeddings[i].Truncated)
                Console.Error.WriteLine($"note: text [{i}] has {embeddings[i].Tokens} tokens and was cut to {encoder.Tokenizer.MaxLength} (--max-tokens)");
        return 0;
    }
}

using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CoeffTune.Checkpoints;
using CoeffTune.Models;
using CoeffTune.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune embed --model minilm TEXT...</c>: mean-pooled, L2-normalised sentence embeddings.</summary>
public static class EmbedCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model name (minilm, arctic-xs) or path to a .onnx/.safetensors file with vocab.txt beside it", DefaultValueFactory = _ => "minilm" };
        var json = new Option<bool>("--json") { Description = "print the full vectors as JSON" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "cut texts to this many tokens, special tokens included", DefaultValueFactory = _ => 128 };
        var texts = new Argument<string[]>("texts") { Description = "texts to embed", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("embed", "Embed texts with a pretrained sentence encoder (mean pooling, L2 norm)") { model, json, maxTokens, texts };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(json), p.GetValue(maxTokens), p.GetValue(texts)!));
        return cmd;
    }

    private static int Run(string modelName, bool asJson, int maxTokens, string[] texts)
    {
        if (maxTokens <= 0) throw new ArgumentException($"--max-tokens must be positive, got {maxTokens}");
        var loaded = PretrainedModels.LoadBert(modelName, classes: 2, maxLength: maxTokens, log: Console.Error);
        using var tokenizer = loaded.Tokenizer;
        var lengths = texts.Select(t => tokenizer.Tokenize(t).FullLength).ToArray();
        using var model = loaded.Model;
        model.eval();
        float[][] vectors;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            using var batch = loaded.Tokenizer.EncodeBatch(texts);
            var hidden = model.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds);
            var pooled = nn.functional.normalize(BertClassifier.MeanPool(hidden, batch.AttentionMask), p: 2, dim: 1);
            vectors = Enumerable.Range(0, texts.Length).Select(i => pooled[i].data<float>().ToArray()).ToArray();
        }
        if (asJson)
        {
            var doc = new
            {
                model = modelName, dims = vectors[0].Length, max_tokens = tokenizer.MaxLength,
                embeddings = texts.Select((t, i) => new { text = t, tokens = lengths[i], truncated = lengths[i] > tokenizer.MaxLength, vector = vectors[i] }),
            };
            ReportTruncation(tokenizer.MaxLength, lengths);
            Console.WriteLine(JsonSerializer.Serialize(doc, Cli.Json));
            return 0;
        }
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"{modelName}: {vectors[0].Length} dims, mean pooling, L2-normalised");
        for (int i = 0; i < texts.Length; i++)
        {
            double norm = Math.Sqrt(vectors[i].Sum(v => (double)v * v));
            var head = string.Join(", ", vectors[i].Take(5).Select(v => v.ToString("F4", inv)));
            Console.WriteLine($"[{i}] norm {norm.ToString("F4", inv)}  [{head}, ...]  {TerminalText.Quote(texts[i])}");
        }
        if (texts.Length > 1)
        {
            Console.WriteLine("cosine similarity:");
            Console.WriteLine("     " + string.Concat(Enumerable.Range(0, texts.Length).Select(j => $"{j,8}")));
            for (int i = 0; i < texts.Length; i++)
                Console.WriteLine($"{i,4} " + string.Concat(Enumerable.Range(0, texts.Length).Select(j =>
                    vectors[i].Zip(vectors[j], (a, b) => (double)a * b).Sum().ToString("F4", inv).PadLeft(8))));
        }
        ReportTruncation(tokenizer.MaxLength, lengths);
        return 0;
    }

    private static void ReportTruncation(int maxTokens, int[] lengths)
    {
        for (int i = 0; i < lengths.Length; i++)
            if (lengths[i] > maxTokens)
                Console.Error.WriteLine($"note: text [{i}] has {lengths[i]} tokens and was cut to {maxTokens} (--max-tokens)");
    }
}

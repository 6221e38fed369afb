using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Generation;
using CoeffTune.Models;
using CoeffTune.Text;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune generate --model DIR [--adapter DIR] TEXT...</c>: text generation with an encoder–decoder (BART).</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "a BART folder in Hugging Face's layout: config.json, model.safetensors, and tokenizer files (tokenizer.json, or vocab.json + merges.txt) for text; or bart-brown, the BART pretrained here (on first use)", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "an adapter folder trained on this model (LoRA, DoRA, Coeff-Tuning, ...)" };
        var beams = new Option<int>("--beams") { Description = "beams; 1 is greedy decoding", DefaultValueFactory = _ => 1 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens generated at most, EOS included", DefaultValueFactory = _ => 20 };
        var minNew = new Option<int>("--min-new-tokens") { Description = "EOS is held back until this many tokens", DefaultValueFactory = _ => 0 };
        var lengthPenalty = new Option<double>("--length-penalty") { Description = "beam search: a finished hypothesis scores sum(log p) / length^penalty", DefaultValueFactory = _ => 1.0 };
        var noCache = new Option<bool>("--no-cache") { Description = "run the decoder over the whole sequence at every step (slower; the same result)" };
        var inputIds = new Option<string[]>("--input-ids") { Description = "an already-tokenized source, ids separated by commas (e.g. 0,31414,2); repeat for more", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "print {\"outputs\": [{\"ids\": [...], \"text\": ...}]}" };
        var texts = new Argument<string[]>("texts") { Description = "source texts", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("generate", "Generate text with an encoder-decoder model (BART), greedy or by beam search, optionally with an adapter")
            { model, adapter, beams, maxNew, minNew, lengthPenalty, noCache, inputIds, json, texts };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(adapter), new GenerationOptions
        {
            NumBeams = p.GetValue(beams), MaxNewTokens = p.GetValue(maxNew), MinNewTokens = p.GetValue(minNew),
            LengthPenalty = p.GetValue(lengthPenalty), UseCache = !p.GetValue(noCache),
        }, p.GetValue(inputIds) ?? Array.Empty<string>(), p.GetValue(json), p.GetValue(texts) ?? Array.Empty<string>()));
        return cmd;
    }

    private static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        [nameof(GenerationOptions.NumBeams)] = "--beams", [nameof(GenerationOptions.MaxNewTokens)] = "--max-new-tokens",
        [nameof(GenerationOptions.MinNewTokens)] = "--min-new-tokens", [nameof(GenerationOptions.LengthPenalty)] = "--length-penalty",
    };

    private static int Run(string modelPath, string? adapterDir, GenerationOptions options, string[] inputIds, bool asJson, string[] texts)
    {
        Cli.WithFlags(Flags, options.Validate);
        if (texts.Length == 0 && inputIds.Length == 0) throw new ArgumentException("no input: give source texts, or --input-ids 0,31414,2");
        if (texts.Length > 0 && inputIds.Length > 0) throw new ArgumentException("give source texts or --input-ids, not both");
        modelPath = BartModel(modelPath);
        var folder = BartCheckpoint.Folder(modelPath);
        var (model, _) = BartCheckpoint.Load(modelPath);
        using (model)
        {
            if (adapterDir is not null)
            {
                var peft = AdapterFile.Load(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), adapterDir);
                Console.Error.WriteLine($"adapter {adapterDir}: {peft.Recipe}, {peft.Report()}");
            }
            model.eval();
            bool hasTokenizer = new[] { TokenizerFiles.TokenizerJson, TokenizerFiles.VocabJson, TokenizerFiles.VocabTxt }.Any(f => File.Exists(Path.Combine(folder, f)));
            using var tokenizer = hasTokenizer ? TextTokenizer.FromFolder(folder) : null;
            if (texts.Length > 0 && tokenizer is null)
                throw new ArgumentException($"--model {modelPath}: no tokenizer files (tokenizer.json, or vocab.json + merges.txt) to read texts with; give --input-ids instead");
            var sources = texts.Length > 0 ? texts.Select(t => tokenizer!.Encode(t)).ToArray() : inputIds.Select(ParseIds).ToArray();
            foreach (var (s, i) in sources.Select((s, i) => (s, i)))
            {
                if (s.Length == 0) throw new ArgumentException($"input {i + 1} has no tokens");
                if (s.Any(id => id < 0 || id >= model.Config.VocabSize))
                    throw new ArgumentException($"--input-ids: {s.First(id => id < 0 || id >= model.Config.VocabSize)} is not an id of the model's vocabulary of {model.Config.VocabSize}");
            }
            var (ids, mask) = Pad(sources, model.Config.PadTokenId);
            using var result = Seq2SeqGenerator.Generate(model, ids, mask, options);
            ids.Dispose();
            mask.Dispose();
            var outputs = result.Sequences.Select((seq, i) => (Ids: seq, Text: tokenizer?.Decode(seq), Score: result.Scores[i])).ToList();
            if (asJson)
            {
                var array = new JsonArray();
                foreach (var o in outputs)
                    array.Add(new JsonObject { ["ids"] = new JsonArray(o.Ids.Select(i => (JsonNode)i).ToArray()), ["text"] = o.Text, ["score"] = o.Score });
                Console.WriteLine(new JsonObject { ["outputs"] = array }.ToJsonString(Cli.Json));
                return 0;
            }
            for (int i = 0; i < outputs.Count; i++)
            {
                var o = outputs[i];
                Console.WriteLine($"[{i}] {(o.Text is null ? "" : TerminalText.Quote(o.Text) + " ")}(score {o.Score.ToString("0.####", CultureInfo.InvariantCulture)})");
                Console.WriteLine($"  ids: {string.Join(" ", o.Ids)}");
            }
            return 0;
        }
    }

    /// <summary>
    /// --model as a BART checkpoint path: a folder or file as given, or the folder of a BART pretrained here by name
    /// (pretrained first when not cached); anything else is an error naming the flag.
    /// </summary>
    internal static string BartModel(string model) =>
        Directory.Exists(model) || File.Exists(model) ? model
        : Training.BartPretraining.FolderFor(model, log: Console.Error)
          ?? throw new ArgumentException($"--model {model}: no such folder, nor a BART pretrained here ({Training.BartPretrainOptions.DefaultName}, " +
              $"{Training.BartPretrainOptions.QuickName}); give a BART folder with config.json and model.safetensors");

    private static int[] ParseIds(string s)
    {
        var parts = s.Split(',', StringSplitOptions.TrimEntries);
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) ? id
            : throw new ArgumentException($"--input-ids '{s}': '{p}' is not an integer id")).ToArray();
    }

    private static (Tensor Ids, Tensor Mask) Pad(int[][] sources, int pad)
    {
        int n = sources.Max(s => s.Length);
        var ids = new long[sources.Length * n];
        var mask = new long[sources.Length * n];
        for (int b = 0; b < sources.Length; b++)
            for (int i = 0; i < n; i++)
                (ids[b * n + i], mask[b * n + i]) = i < sources[b].Length ? (sources[b][i], 1) : (pad, 0);
        return (tensor(ids, new long[] { sources.Length, n }), tensor(mask, new long[] { sources.Length, n }));
    }
}

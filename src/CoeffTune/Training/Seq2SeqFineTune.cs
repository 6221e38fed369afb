using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Generation;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Text;
using TorchSharp;

namespace CoeffTune.Training;

/// <summary>A sequence-to-sequence fine-tuning run: a BART folder, a file of source/target pairs, a recipe.</summary>
public sealed record Seq2SeqFineTuneOptions
{
    /// <summary>A BART folder in Hugging Face's layout, with its tokenizer files.</summary>
    public required string Model { get; init; }
    /// <summary>A .csv/.tsv/.jsonl file with <c>source</c> and <c>target</c> columns.</summary>
    public required string Task { get; init; }
    public string Method { get; init; } = "coeff+lora";
    public IReadOnlyDictionary<string, JsonObject>? MethodOptions { get; init; }
    /// <summary>Pairs to train on, at most (the rest of the file after the validation pairs when null).</summary>
    public int? TrainSize { get; init; }
    /// <summary>Pairs held out for validation (model selection by BLEU), drawn by the seed from the pairs not held out for testing.</summary>
    public int ValidationSize { get; init; } = 100;
    /// <summary>
    /// Test pairs, at most: a fixed share (<see cref="TestFraction"/>) of the file is held out by the catalogue's hold-out
    /// seed, the same for every run and recipe, and the best epoch's adapter is scored on it (null: all of that share).
    /// </summary>
    public int? TestSize { get; init; }
    /// <summary>Share of the file's pairs held out for testing; 0 holds none out.</summary>
    public double TestFraction { get; init; } = 0.2;
    /// <summary>Tokens kept per source and per target, special tokens included.</summary>
    public int MaxTokens { get; init; } = 128;
    public double LabelSmoothing { get; init; }
    public TrainOptions Train { get; init; } = new();
    public required string OutDir { get; init; }
    public bool Resume { get; init; }
    public bool AllowSettingChanges { get; init; }
    public string Encoding { get; init; } = "utf-8";
}

/// <summary>What a sequence-to-sequence run produced: its training history, the best validation, the adapter.</summary>
public sealed record Seq2SeqFineTuneResult(TrainResult Training, TrainableReport Trainable, string Recipe, string AdapterDir, int TrainExamples, int ValidationExamples,
    Evaluation? Test, int TestExamples);

/// <summary>
/// Fine-tunes a BART folder on source/target pairs with a recipe: the pairs are tokenized by the folder's tokenizer
/// (cut to <see cref="Seq2SeqFineTuneOptions.MaxTokens"/>), split by the seed, trained by teacher forcing, evaluated
/// every epoch by greedy generation (BLEU-4 picks the best epoch), and the best adapter is written to
/// <c>OUT/adapter</c> with <c>OUT/result.json</c> and <c>OUT/metrics.jsonl</c> beside it. A fixed share of the file's
/// pairs is held out for testing (the same pairs for every seed and recipe); the best adapter's scores on them are the
/// run's result.
/// </summary>
public static class Seq2SeqFineTune
{
    /// <summary>True when <paramref name="model"/> is a folder (or a file in one) whose config.json says model_type "bart".</summary>
    public static bool IsSeq2SeqModel(string model)
    {
        var folder = Directory.Exists(model) ? model : File.Exists(model) ? Path.GetDirectoryName(Path.GetFullPath(model)) : null;
        var config = folder is null ? null : Path.Combine(folder, "config.json");
        if (config is null || !File.Exists(config)) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(config));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("model_type", out var t)
                && t.ValueKind == JsonValueKind.String && t.GetString() == "bart";
        }
        catch (JsonException) { return false; }
    }

    /// <summary>
    /// The test pairs of a file of <paramref name="count"/> pairs (at most <paramref name="testSize"/> of them) and the
    /// pool the rest are drawn from. They depend on the count alone: the first <paramref name="fraction"/> of a
    /// permutation by the catalogue's fixed hold-out seed, so training and <c>eval</c> agree on them.
    /// </summary>
    public static (List<int> Test, List<int> Pool) HoldOut(int count, double fraction, int? testSize = null)
    {
        var order = Trainer<Seq2SeqBatch>.Permutation(count, TaskCatalog.HoldOutSeed, 0);
        int held = (int)Math.Round(fraction * count);
        return (order.Take(testSize is int t ? Math.Min(t, held) : held).ToList(), order.Skip(held).OrderBy(i => i).ToList());
    }

    /// <summary>
    /// Scores a BART (with the adapter in <paramref name="adapterDir"/>, and with its adapters turned off) on the test
    /// pairs of a source/target file, the share training held out: greedy generation, BLEU-4, exact match, token accuracy.
    /// </summary>
    public static (Evaluation Adapted, Evaluation Disabled, string Recipe, int Pairs) Evaluate(string modelFolder, string adapterDir, string task,
        int batchSize, string device, int maxTokens = 128, string encoding = "utf-8", double testFraction = 0.2)
    {
        var pairs = TextFileReader.ReadPairs(task, encoding: encoding);
        var (testIndices, _) = HoldOut(pairs.Count, testFraction);
        if (testIndices.Count == 0) throw new ArgumentException($"{task}: {pairs.Count} pairs hold out none for testing");
        var (model, _) = BartCheckpoint.Load(modelFolder);
        using (model)
        {
            var peft = AdapterFile.Load(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), adapterDir);
            var folder = BartCheckpoint.Folder(modelFolder);
            var c = model.Config;
            using var tokenizer = TextTokenizer.FromFolder(folder, Math.Min(maxTokens, c.MaxPositionEmbeddings));
            var test = testIndices.Select(i => new Seq2SeqExample(tokenizer.Encode(pairs[i].Source), tokenizer.Encode(pairs[i].Target))).ToList();
            var set = new Seq2SeqExamples(test, c.PadTokenId, c.DecoderStartTokenId);
            var objective = TestObjective(test, c, tokenizer);
            var dev = torch.device(device);
            model.to(dev);
            var adapted = objective.Evaluate(model, set, batchSize, dev);
            Evaluation disabled;
            using (peft.DisableAdapters()) disabled = objective.Evaluate(model, set, batchSize, dev);
            return (adapted, disabled, peft.Recipe, test.Count);
        }
    }

    /// <summary>
    /// How test pairs are scored, by training and by <c>eval</c> alike: plain cross-entropy (no label smoothing), and
    /// greedy generation of up to the longest test target's length.
    /// </summary>
    private static Seq2SeqObjective TestObjective(IReadOnlyList<Seq2SeqExample> test, BartConfig c, TextTokenizer tokenizer) =>
        new(0, new GenerationOptions { MaxNewTokens = Math.Min(test.Max(e => e.Target.Length), c.MaxPositionEmbeddings - 1) },
            ids => tokenizer.Decode(ids), new[] { c.BosTokenId });

    public static Seq2SeqFineTuneResult Run(Seq2SeqFineTuneOptions o, ITrainingObserver? observer = null, TextWriter? log = null)
    {
        var train = o.Train.Validate();
        if (o.MaxTokens < 4) throw new ArgumentOutOfRangeException(nameof(o.MaxTokens), o.MaxTokens, "max tokens must be at least 4");
        if (o.ValidationSize < 1) throw new ArgumentOutOfRangeException(nameof(o.ValidationSize), o.ValidationSize, "validation size must be at least 1");
        if (o.TestSize is < 0) throw new ArgumentOutOfRangeException(nameof(o.TestSize), o.TestSize, "test size must be at least 0");
        if (!(o.TestFraction is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(o.TestFraction), o.TestFraction, "the test share must be in [0, 1)");
        var pairs = TextFileReader.ReadPairs(o.Task, encoding: o.Encoding);
        var (testIndices, poolIndices) = HoldOut(pairs.Count, o.TestFraction, o.TestSize);
        int held = pairs.Count - poolIndices.Count;
        if (poolIndices.Count <= o.ValidationSize)
            throw new ArgumentException($"{o.Task}: {pairs.Count} pairs leave none to train on after {held} held out for testing and {o.ValidationSize} for validation");
        var folder = BartCheckpoint.Folder(o.Model);
        var (model, _) = BartCheckpoint.Load(o.Model);
        using (model)
        {
            // The data and the model are read before the run folder is touched; a second run on it is refused.
            using var runFolder = RunFolder.Acquire(o.OutDir, log);
            int maxLength = Math.Min(o.MaxTokens, model.Config.MaxPositionEmbeddings);
            using var tokenizer = TextTokenizer.FromFolder(folder, maxLength);
            // Each text tokenized once: its ids and whether it was cut.
            var tokenized = pairs.Select(p => (Source: tokenizer.Tokenize(p.Source), Target: tokenizer.Tokenize(p.Target))).ToList();
            var examples = tokenized.Select(t => new Seq2SeqExample(t.Source.Ids, t.Target.Ids)).ToList();
            int cut = tokenized.Count(t => t.Source.Truncated || t.Target.Truncated);
            if (cut > 0) log?.WriteLine($"{cut} of {pairs.Count} pairs were longer than {maxLength} tokens and were cut");
            var order = Trainer<Seq2SeqBatch>.Permutation(poolIndices.Count, train.Seed, -1).Select(i => poolIndices[i]).ToList();
            var validation = order.Take(o.ValidationSize).Select(i => examples[i]).ToList();
            var rest = order.Skip(o.ValidationSize).Select(i => examples[i]);
            var test = testIndices.Select(i => examples[i]).ToList();
            var training = (o.TrainSize is int n ? rest.Take(n) : rest).ToList();

            var configs = Recipe.Parse(o.Method, o.MethodOptions);
            if (configs.Any(c => c.Method == "linear"))
                throw new ArgumentException($"recipe '{o.Method}': linear trains a classification head, and a sequence-to-sequence model has none");
            var peft = PeftModel.Wrap(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), configs.ToArray());
            log?.WriteLine($"{peft.Recipe} on {Path.GetFileName(o.Task)}: {training.Count} training pairs, {validation.Count} validation pairs, " +
                $"{test.Count} test pairs; {peft.Report()}");
            var c = model.Config;
            var objective = new Seq2SeqObjective(o.LabelSmoothing,
                new GenerationOptions { MaxNewTokens = Math.Min(validation.Max(e => e.Target.Length), c.MaxPositionEmbeddings - 1) },
                ids => tokenizer.Decode(ids), new[] { c.BosTokenId });
            var trainer = new Trainer<Seq2SeqBatch>(peft, objective, train, observer)
            {
                RunSettings = new JsonObject
                {
                    ["task"] = Path.GetFullPath(o.Task), ["model"] = Path.GetFullPath(o.Model), ["max_tokens"] = maxLength,
                    ["label_smoothing"] = o.LabelSmoothing, ["objective"] = "seq2seq",
                },
                AllowSettingChanges = o.AllowSettingChanges,
                Log = log,
            };
            var result = trainer.Fit(new Seq2SeqExamples(training, c.PadTokenId, c.DecoderStartTokenId),
                new Seq2SeqExamples(validation, c.PadTokenId, c.DecoderStartTokenId), o.OutDir, o.Resume);
            var adapterDir = Path.Combine(o.OutDir, "adapter");
            AdapterFile.Save(peft, adapterDir, Path.GetFullPath(o.Model));
            // The trainer leaves the best epoch's weights in the model: the test scores are the saved adapter's.
            var testEval = test.Count == 0 ? null
                : TestObjective(test, c, tokenizer).Evaluate(model, new Seq2SeqExamples(test, c.PadTokenId, c.DecoderStartTokenId), train.BatchSize, torch.device(train.Device));
            var summary = new JsonObject
            {
                ["recipe"] = peft.Recipe, ["task"] = o.Task, ["model"] = o.Model, ["trainable"] = peft.Report().Total,
                ["best_epoch"] = result.BestEpoch, ["steps"] = result.Steps, ["seconds"] = result.Seconds,
                ["validation"] = JsonSerializer.SerializeToNode(result.BestValidation.Metrics),
                ["validation_loss"] = result.BestValidation.Loss,
                ["max_tokens"] = maxLength, ["test_pairs"] = test.Count,
                ["test"] = testEval is null ? null : JsonSerializer.SerializeToNode(testEval.Metrics),
                ["test_loss"] = testEval?.Loss,
            };
            result.WriteHistory(Path.Combine(o.OutDir, FineTune.MetricsFile));
            IO.AtomicFile.WriteAllText(Path.Combine(o.OutDir, "result.json"), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return new Seq2SeqFineTuneResult(result, peft.Report(), peft.Recipe, adapterDir, training.Count, validation.Count, testEval, test.Count);
        }
    }
}

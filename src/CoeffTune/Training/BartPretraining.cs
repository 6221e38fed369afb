using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Methods.Baselines;
using CoeffTune.Models;
using CoeffTune.Text;
using TorchSharp;

namespace CoeffTune.Training;

/// <summary>
/// Settings of the small BART pretrained here (no pretrained BART can be downloaded): its byte-level BPE vocabulary,
/// its shape, and the denoising budget. Immutable; <see cref="Validate"/> names the bad value.
/// </summary>
public sealed record BartPretrainOptions
{
    public int VocabSize { get; init; } = 4096;
    public int DModel { get; init; } = 128;
    public int Layers { get; init; } = 3;
    public int Heads { get; init; } = 4;
    public int FfnDim { get; init; } = 512;
    /// <summary>Positions the model reads: room for a vision-language input (two images' 49 patches each, and a question).</summary>
    public int MaxPositions { get; init; } = 256;
    /// <summary>Tokens per pretraining example, &lt;s&gt; and &lt;/s&gt; included.</summary>
    public int MaxTokens { get; init; } = 64;
    /// <summary>
    /// Optimiser steps. Measured here with one thread: 0.6 s a step for this shape at batch 32, so 1,400 steps take
    /// about 15 minutes on one core.
    /// </summary>
    public int Steps { get; init; } = 1400;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>
    /// Steps of the copying drill before the denoising: the model learns to reproduce sequences of random tokens, which
    /// it can only do by reading its encoder (see <see cref="BartPretraining"/> for why). 0 skips the drill.
    /// </summary>
    public int CopyDrillSteps { get; init; } = 400;
    /// <summary>Random tokens per drill sequence (all of one length; &lt;s&gt; and &lt;/s&gt; come on top).</summary>
    public int CopyDrillLength { get; init; } = 30;
    /// <summary>Held-out examples (from the held-out Brown documents and e-mails) the denoising is judged on.</summary>
    public int HeldOut { get; init; } = 512;
    /// <summary>Texts of each corpus read at most (null: all); a quick pretraining reads few.</summary>
    public int? MaxTexts { get; init; }
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>The cache folder name; the default pretraining is "bart-brown", a quick one "bart-brown-quick".</summary>
    public string CacheName { get; init; } = DefaultName;

    public const string DefaultName = "bart-brown";
    public const string QuickName = "bart-brown-quick";

    /// <summary>The few-minute pretraining that smoke tests use: a smaller vocabulary and model, few texts and steps.</summary>
    public static BartPretrainOptions Quick { get; } = new()
    {
        VocabSize = 1024, DModel = 64, Layers = 2, Heads = 4, FfnDim = 128, Steps = 300, BatchSize = 16, LearningRate = 2e-3,
        HeldOut = 64, MaxTexts = 600, CacheName = QuickName,
    };

    /// <summary>The options a cache name stands for ("bart-brown", "bart-brown-quick"), or null.</summary>
    public static BartPretrainOptions? FromCacheName(string name) => name switch
    {
        DefaultName => new BartPretrainOptions(),
        QuickName => Quick,
        _ => null,
    };

    public BartPretrainOptions Validate()
    {
        void AtLeast(int v, int min, string name)
        {
            if (v < min) throw new ArgumentOutOfRangeException(name, v, $"{nameof(BartPretrainOptions)}.{name} must be at least {min}, got {v}");
        }
        AtLeast(VocabSize, 4 + 256 + 1, nameof(VocabSize));
        AtLeast(DModel, 8, nameof(DModel));
        AtLeast(Layers, 1, nameof(Layers));
        AtLeast(Heads, 1, nameof(Heads));
        AtLeast(FfnDim, 1, nameof(FfnDim));
        AtLeast(MaxTokens, 8, nameof(MaxTokens));
        AtLeast(MaxPositions, MaxTokens, nameof(MaxPositions));
        AtLeast(Steps, 1, nameof(Steps));
        AtLeast(BatchSize, 1, nameof(BatchSize));
        AtLeast(HeldOut, 1, nameof(HeldOut));
        AtLeast(CopyDrillSteps, 0, nameof(CopyDrillSteps));
        AtLeast(CopyDrillLength, 1, nameof(CopyDrillLength));
        if (CopyDrillLength > MaxTokens - 2)
            throw new ArgumentOutOfRangeException(nameof(CopyDrillLength), CopyDrillLength, $"{nameof(BartPretrainOptions)}.{nameof(CopyDrillLength)} must leave room for <s> and </s> in {nameof(MaxTokens)} {MaxTokens}");
        if (DModel % Heads != 0) throw new ArgumentException($"{nameof(BartPretrainOptions)}.{nameof(DModel)} {DModel} is not a multiple of {nameof(Heads)} {Heads}", nameof(DModel));
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be positive");
        if (string.IsNullOrWhiteSpace(CacheName)) throw new ArgumentException($"{nameof(BartPretrainOptions)}.{nameof(CacheName)} is empty", nameof(CacheName));
        return this;
    }

    public BartConfig ModelConfig(int vocabSize) => new BartConfig
    {
        VocabSize = vocabSize, DModel = DModel, EncoderLayers = Layers, DecoderLayers = Layers, EncoderAttentionHeads = Heads,
        DecoderAttentionHeads = Heads, EncoderFfnDim = FfnDim, DecoderFfnDim = FfnDim, MaxPositionEmbeddings = MaxPositions,
        PadTokenId = 1, BosTokenId = 0, EosTokenId = 2, DecoderStartTokenId = 2, Dropout = 0.1,
    }.Validate();
}

/// <summary>What the pretraining produced: the Hugging Face BART folder (weights, config, tokenizer) and how well it denoises held-out text.</summary>
public sealed record PretrainedBart(string Folder, BartConfig Config, double HeldOutLoss, double HeldOutTokenAccuracy, double TrainLossMean, double Seconds);

/// <summary>
/// Pretrains a small BART with BART's own denoising objective on the Brown corpus and SpamAssassin e-mails, once;
/// later calls read the cached folder. Steps: a byte-level BPE vocabulary is learnt on the training texts
/// (<see cref="BpeTrainer"/>); the texts are cut into examples of whole sentences; every example is corrupted by
/// sentence permutation (its sentences shuffled) and text infilling (spans with Poisson(λ = 3) lengths, about 30% of
/// the tokens, each span replaced by one &lt;mask&gt;; a zero-length span inserts one), and the model learns to
/// reconstruct the original by teacher forcing. Held-out examples come from the Brown documents and e-mails the
/// task catalogue holds out; the reported accuracy is the share of their tokens predicted right under teacher forcing.
/// The result is a folder in Hugging Face's BART layout with its tokenizer, which <see cref="BartCheckpoint"/> loads.
/// <para>
/// Before the denoising comes a short copying drill (<see cref="BartPretrainOptions.CopyDrillSteps"/>): the model
/// learns to reproduce sequences of random tokens, which no language model can predict, so the only way down is to
/// read the encoder through cross-attention. Without it, at this budget, the decoder becomes a language model that
/// ignores its source: measured here, 500 denoising steps gave the same loss curve whether the sources were corrupted
/// texts or the uncorrupted targets themselves (held-out token accuracy 14.5%); a 1,400-step model gave the same output
/// for different sources, and fine-tuned on the vision–language tasks it answered every question alike, even with
/// every weight trained, where a randomly initialised BART learnt them. With a 400-step drill (100% copied after it)
/// the same 500 denoising steps reach 28.9%. The drill's sequences are all of one length: with lengths drawn from
/// 8–62 (or even 20–30) the model had not started copying after 450 (350) steps, at one length it copies within 400.
/// </para>
/// </summary>
public static class BartPretraining
{
    public const string InfoFile = "pretrain.json";
    /// <summary>Raise with any change to the pretraining code: a cached model of another version is pretrained anew.</summary>
    public const int CodeVersion = 3;
    public const double MaskFraction = 0.3;
    public const double PoissonLambda = 3.0;

    public static bool IsCached(BartPretrainOptions o, AssetCache? cache = null)
    {
        var dir = (cache ?? AssetCache.Default).PathFor(o.CacheName);
        return CachedVersion(Path.Combine(dir, InfoFile)) == CodeVersion && File.Exists(Path.Combine(dir, BartCheckpoint.WeightsName));
    }

    private static int? CachedVersion(string info) => AssetCache.RecordedVersion(info);

    /// <summary>The folder of a BART pretrained here, by cache name ("bart-brown"), pretraining it first when it is not cached; null for another name.</summary>
    public static string? FolderFor(string name, AssetCache? cache = null, TextWriter? log = null) =>
        BartPretrainOptions.FromCacheName(name) is { } o ? Ensure(o, cache, log).Folder : null;

    public static PretrainedBart Ensure(BartPretrainOptions o, AssetCache? cache = null, TextWriter? log = null, ITrainingObserver? observer = null)
    {
        o.Validate();
        cache ??= AssetCache.Default;
        log ??= TextWriter.Null;
        var dir = cache.PathFor(o.CacheName);
        var info = Path.Combine(dir, InfoFile);
        if (IsCached(o, cache))
        {
            var j = JsonDocument.Parse(File.ReadAllText(info)).RootElement;
            return new PretrainedBart(dir, BartConfig.FromJson(Path.Combine(dir, BartCheckpoint.ConfigName)), j.GetProperty("heldout_loss").GetDouble(),
                j.GetProperty("heldout_token_accuracy").GetDouble(), j.GetProperty("train_loss_mean").GetDouble(), j.GetProperty("seconds").GetDouble());
        }
        if (CachedVersion(info) is int old)
            log.WriteLine($"the cached {o.CacheName} was pretrained by version {old} of the pretraining code, this is version {CodeVersion}: pretraining anew");
        // One pretraining per cache folder at a time: a second process is refused, naming the folder, rather than mixing checkpoints.
        var run = Path.Combine(dir, "run");
        PretrainedBart pretrained;
        using (RunFolder.Acquire(run, log))
        {
            if (IsCached(o, cache)) return Ensure(o, cache, log, observer);
            pretrained = Pretrain(o, cache, dir, info, run, log, observer);
        }
        Directory.Delete(run, true);      // the checkpoints, once the model is in place
        return pretrained;
    }

    private static PretrainedBart Pretrain(BartPretrainOptions o, AssetCache cache, string dir, string info, string run, TextWriter log, ITrainingObserver? observer)
    {
        log.WriteLine($"pretraining a BART ({o.CacheName}) on the Brown corpus and SpamAssassin e-mails; cached in {dir} for later runs");
        var clock = Stopwatch.StartNew();
        var brown = TaskCatalog.Load("brown", cache, log);
        var spam = TaskCatalog.Load("spam", cache, log);
        IEnumerable<string> Take(IReadOnlyList<string> texts) => o.MaxTexts is int n ? texts.Take(n) : texts;
        var trainTexts = Take(brown.TextTrain.Texts).Concat(Take(spam.TextTrain.Texts)).ToList();
        var heldTexts = Take(brown.TextTest.Texts).Concat(Take(spam.TextTest.Texts)).ToList();

        // The tokenizer is learnt from the training texts only; learning is deterministic, so a resumed run learns the same one.
        var bpe = BpeTrainer.Train(trainTexts, o.VocabSize);
        var tokenizerDir = Path.Combine(dir, "tokenizer");
        bpe.Save(tokenizerDir, o.MaxPositions);
        log.WriteLine($"byte-level BPE: {bpe.VocabSize} tokens ({bpe.Merges.Count} merges) in {clock.Elapsed.TotalSeconds:F0} s");

        var config = o.ModelConfig(bpe.VocabSize);
        int mask = bpe.Vocab[BpeTrainer.MaskToken];
        var trainChunks = Chunks(trainTexts, bpe, o.MaxTokens);
        var heldChunks = Chunks(heldTexts, bpe, o.MaxTokens);
        if (trainChunks.Count == 0 || heldChunks.Count == 0) throw new InvalidDataException("the pretraining corpus yields no examples");
        // Enough corrupted copies of the corpus for every step: copy k of example i is corrupted by (seed, k, i) alone.
        int needed = o.Steps * o.BatchSize, copies = (needed + trainChunks.Count - 1) / trainChunks.Count;
        var train = new List<Seq2SeqExample>(copies * trainChunks.Count);
        for (int k = 0; k < copies; k++)
            for (int i = 0; i < trainChunks.Count; i++)
                train.Add(Corrupt(trainChunks[i], new Random(Mix(o.Seed, k, i)), mask, config.BosTokenId, config.EosTokenId));
        var heldOrder = Trainer<Seq2SeqBatch>.Permutation(heldChunks.Count, TaskCatalog.HoldOutSeed, 0).Take(o.HeldOut).ToList();
        var held = heldOrder.Select(i => Corrupt(heldChunks[i], new Random(Mix(TaskCatalog.HoldOutSeed, i)), mask, config.BosTokenId, config.EosTokenId)).ToList();
        log.WriteLine($"{trainChunks.Count} training examples of at most {o.MaxTokens} tokens ({copies} corrupted cop{(copies == 1 ? "y" : "ies")}), {held.Count} held out; " +
            $"{o.Steps} steps of {o.BatchSize}");

        torch.manual_seed(o.Seed);
        using var model = new BartForConditionalGeneration(config);
        var peft = PeftModel.Wrap(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), new FullConfig());
        var objective = new Seq2SeqObjective();
        var options = new TrainOptions
        {
            Epochs = 1, MaxSteps = o.Steps, BatchSize = o.BatchSize, LearningRate = o.LearningRate, WeightDecay = 0.01,
            WarmupFraction = 0.05, Seed = o.Seed, Device = o.Device, CheckpointEvery = 100,
        };
        TrainResult? drilled = null;
        if (o.CopyDrillSteps > 0)
        {
            List<Seq2SeqExample> Drills(int count, int stream) => Enumerable.Range(0, count)
                .Select(i => RandomCopy(o.CopyDrillLength, new Random(Mix(o.Seed, stream, i)), mask, config.BosTokenId, config.EosTokenId)).ToList();
            var drills = Drills(o.CopyDrillSteps * o.BatchSize, -1);
            var fresh = Drills(o.HeldOut, -2);
            log.WriteLine($"copying drill: {o.CopyDrillSteps} steps of {o.BatchSize} sequences of {o.CopyDrillLength} random tokens");
            var drill = new Trainer<Seq2SeqBatch>(peft, objective, options with { MaxSteps = o.CopyDrillSteps }, observer ?? new StepLog(log, 50))
            {
                RunSettings = new JsonObject { ["objective"] = "copying-drill", ["version"] = CodeVersion, ["options"] = JsonSerializer.SerializeToNode(o) },
                Log = log,
            };
            drilled = drill.Fit(new Seq2SeqExamples(drills, config.PadTokenId, config.DecoderStartTokenId),
                new Seq2SeqExamples(fresh, config.PadTokenId, config.DecoderStartTokenId), Path.Combine(run, "drill"), resume: true);
            log.WriteLine($"copying drill: token accuracy {drilled.BestValidation.Metrics["token_accuracy"]:P1} on {fresh.Count} new random sequences");
        }
        var trainer = new Trainer<Seq2SeqBatch>(peft, objective, options, observer ?? new StepLog(log, 50))
        {
            RunSettings = new JsonObject { ["objective"] = "bart-denoising", ["version"] = CodeVersion, ["options"] = JsonSerializer.SerializeToNode(o) },
            Log = log,
        };
        var result = trainer.Fit(new Seq2SeqExamples(train, config.PadTokenId, config.DecoderStartTokenId),
            new Seq2SeqExamples(held, config.PadTokenId, config.DecoderStartTokenId), run, resume: true);
        var eval = result.BestValidation;
        double accuracy = eval.Metrics["token_accuracy"];
        double trainLoss = result.History[^1].TrainLoss;      // the mean over the run's one epoch

        // Every file is written to a staging folder and moved into place; the info file last marks the model complete.
        var stage = Path.Combine(dir, "stage");
        if (Directory.Exists(stage)) Directory.Delete(stage, true);
        BartCheckpoint.Save(model, stage);
        foreach (var f in Directory.GetFiles(tokenizerDir)) File.Copy(f, Path.Combine(stage, Path.GetFileName(f)), overwrite: true);
        foreach (var f in Directory.GetFiles(stage)) File.Move(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        Directory.Delete(stage, true);
        double seconds = clock.Elapsed.TotalSeconds;
        IO.AtomicFile.WriteAllText(info, JsonSerializer.Serialize(new
        {
            version = CodeVersion, heldout_loss = eval.Loss, heldout_token_accuracy = accuracy, train_loss_mean = trainLoss, seconds,
            train_seconds = result.Seconds, steps = result.Steps, batch_size = o.BatchSize, train_examples = trainChunks.Count,
            heldout_examples = held.Count, copy_drill_steps = o.CopyDrillSteps, copy_drill_length = o.CopyDrillLength,
            copy_drill_token_accuracy = drilled?.BestValidation.Metrics["token_accuracy"], vocab_size = bpe.VocabSize, d_model = o.DModel, layers = o.Layers, heads = o.Heads,
            ffn_dim = o.FfnDim, max_tokens = o.MaxTokens, mask_fraction = MaskFraction, poisson_lambda = PoissonLambda,
            threads = torch.get_num_threads(),
        }, new JsonSerializerOptions { WriteIndented = true }));
        Directory.Delete(tokenizerDir, true);
        log.WriteLine($"pretrained BART ({o.CacheName}): held-out denoising loss {eval.Loss:F3}, token accuracy {accuracy:P2}, " +
            $"mean training loss {trainLoss:F3}, {seconds:F0} s in all");
        return new PretrainedBart(dir, config, eval.Loss, accuracy, trainLoss, seconds);
    }

    /// <summary>Writes the mean training loss and the pace every <paramref name="every"/> steps.</summary>
    private sealed class StepLog(TextWriter log, int every) : ITrainingObserver
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private double sum;
        private int count, total, first;

        public void OnStart(int totalSteps, int stepsPerEpoch, int startStep) { total = totalSteps; first = startStep; clock.Restart(); }

        public void OnStep(int step, int epoch, double loss, double examplesPerSecond)
        {
            sum += loss; count++;
            if (step % every != 0 && step != total) return;
            double perStep = clock.Elapsed.TotalSeconds / Math.Max(1, step - first);
            log.WriteLine($"step {step}/{total}: loss {sum / count:F3}, {perStep:F2} s/step, about {perStep * (total - step) / 60:F1} min left");
            sum = 0; count = 0;
        }
    }

    private static readonly Regex SentenceEnd = new(@"(?<=[.!?])\s+", RegexOptions.Compiled);

    /// <summary>
    /// Examples of whole sentences: each text's sentences (split after . ! or ?) in token ids, gathered until the next
    /// would pass <paramref name="maxTokens"/> - 2 (room for &lt;s&gt; and &lt;/s&gt;); a longer sentence is cut.
    /// </summary>
    public static List<int[][]> Chunks(IEnumerable<string> texts, BpeTrainer bpe, int maxTokens)
    {
        int room = maxTokens - 2;
        var chunks = new List<int[][]>();
        foreach (var text in texts)
        {
            var current = new List<int[]>();
            int length = 0;
            foreach (var (sentence, i) in SentenceEnd.Split(text.Trim()).Where(s => s.Length > 0).Select((s, i) => (s, i)))
            {
                var ids = bpe.EncodeContent(i == 0 ? sentence : " " + sentence);
                if (ids.Length > room) ids = ids[..room];
                if (length + ids.Length > room && current.Count > 0)
                {
                    chunks.Add(current.ToArray());
                    current.Clear();
                    length = 0;
                }
                current.Add(ids);
                length += ids.Length;
            }
            if (current.Count > 0 && length >= 4) chunks.Add(current.ToArray());
        }
        return chunks;
    }

    /// <summary>
    /// A seed from several integers, the same in every process (HashCode.Combine is randomised per process, which would
    /// make a resumed pretraining corrupt its examples differently).
    /// </summary>
    public static int Mix(params int[] values)
    {
        unchecked
        {
            uint h = 2166136261;
            foreach (int v in values)
                for (int b = 0; b < 4; b++) { h ^= (byte)(v >> (8 * b)); h *= 16777619; }
            return (int)(h & 0x7fffffff);
        }
    }

    /// <summary>One Poisson(λ) draw (Knuth's method; fine for small λ).</summary>
    public static int Poisson(Random rng, double lambda)
    {
        double limit = Math.Exp(-lambda), p = 1;
        int k = 0;
        do { k++; p *= rng.NextDouble(); } while (p > limit);
        return k - 1;
    }

    /// <summary>A drill example: <paramref name="length"/> random ordinary tokens (ids past the leading specials, below &lt;mask&gt;), the target the same as the source.</summary>
    public static Seq2SeqExample RandomCopy(int length, Random rng, int maskId, int bos, int eos)
    {
        var text = Enumerable.Range(0, length).Select(_ => rng.Next(BpeTrainer.LeadingSpecials.Count, maskId)).Prepend(bos).Append(eos).ToArray();
        return new Seq2SeqExample(text, text);
    }

    /// <summary>
    /// BART's corruption of one example (its sentences' ids): the sentences are shuffled, then spans of Poisson(3)
    /// lengths are masked at random starts until 30% of the tokens (rounded) are masked, each maximal run of masked
    /// tokens becoming one &lt;mask&gt;, and each zero-length span inserting one. The target is the original text.
    /// Source and target are wrapped in &lt;s&gt; … &lt;/s&gt;.
    /// </summary>
    public static Seq2SeqExample Corrupt(int[][] sentences, Random rng, int maskId, int bos, int eos)
    {
        var target = new List<int> { bos };
        foreach (var s in sentences) target.AddRange(s);
        target.Add(eos);
        var order = Enumerable.Range(0, sentences.Length).ToArray();
        rng.Shuffle(order);
        var tokens = order.SelectMany(i => sentences[i]).ToArray();
        int n = tokens.Length, toMask = (int)Math.Round(MaskFraction * n), masked = 0;
        var isMasked = new bool[n];
        var insertBefore = new bool[n + 1];
        for (int guard = 0; masked < toMask && guard < 10 * n + 10; guard++)
        {
            int len = Poisson(rng, PoissonLambda), start = rng.Next(n);
            if (len == 0) { insertBefore[start] = true; continue; }
            for (int j = start; j < Math.Min(n, start + len) && masked < toMask; j++)
                if (!isMasked[j]) { isMasked[j] = true; masked++; }
        }
        var source = new List<int> { bos };
        for (int j = 0; j <= n; j++)
        {
            if (insertBefore[j] && !(j > 0 && isMasked[j - 1]) && !(j < n && isMasked[j])) source.Add(maskId);
            if (j == n) break;
            if (isMasked[j]) { if (j == 0 || !isMasked[j - 1]) source.Add(maskId); }
            else source.Add(tokens[j]);
        }
        source.Add(eos);
        return new Seq2SeqExample(source.ToArray(), target.ToArray());
    }
}

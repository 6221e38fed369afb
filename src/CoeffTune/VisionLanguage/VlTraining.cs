using CoeffTune.Data;
using CoeffTune.Generation;
using CoeffTune.Metrics;
using CoeffTune.Models;
using CoeffTune.Text;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.VisionLanguage;

/// <summary>
/// The frozen vision tower's output for a set of images, computed once: row r of <see cref="Table"/> (N + 1, patches,
/// width) holds the patch tokens of the image that <see cref="Rows"/> maps to r; the last row is zeros (an absent image).
/// </summary>
public sealed class VlFeatures : IDisposable
{
    public Tensor Table { get; }
    public IReadOnlyDictionary<VlImage, int> Rows { get; }
    public int Patches => (int)Table.shape[1];
    public int Width => (int)Table.shape[2];
    public int ZeroRow => (int)Table.shape[0] - 1;

    private VlFeatures(Tensor table, Dictionary<VlImage, int> rows) { Table = table; Rows = rows; }

    /// <summary>Pooled grid side: the 7 x 7 patch tokens are averaged to 4 x 4 (adaptive average pooling).</summary>
    public const int DefaultGridSide = 4;

    /// <summary>
    /// Runs <paramref name="vit"/> (evaluation mode, no gradients) on every distinct image of <paramref name="examples"/> and
    /// averages its grid of patch tokens down to <paramref name="gridSide"/> x <paramref name="gridSide"/> tokens (adaptive
    /// average pooling, as region features are few): two images and a question then fit in the positions the BART was
    /// pretrained on, and the encoder reads a third of the tokens.
    /// </summary>
    public static VlFeatures Compute(VisionTransformer vit, IEnumerable<VlExample> examples, ImageDataset digits, ImageDataset garments, int batchSize = 256,
        int gridSide = DefaultGridSide)
    {
        var images = examples.SelectMany(e => e.Images).Distinct().ToList();
        var rows = images.Select((im, i) => (im, i)).ToDictionary(p => p.im, p => p.i);
        vit.eval();
        using var _ = no_grad();
        var parts = new List<Tensor>();
        int side = digits.Height, size = digits.ImageSize;
        for (int start = 0; start < images.Count; start += batchSize)
        {
            var chunk = images.Skip(start).Take(batchSize).ToList();
            var pixels = new float[chunk.Count * size];
            for (int i = 0; i < chunk.Count; i++) VlTasks.Pixels(chunk[i], digits, garments).CopyTo(pixels, i * size);
            using var x = tensor(pixels, new long[] { chunk.Count, digits.Channels, side, side });
            parts.Add(Pool(vit.PatchTokens(x), vit.Config, gridSide));
        }
        var c = vit.Config;
        parts.Add(zeros(1, gridSide * gridSide, c.Dim));
        var table = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return new VlFeatures(table, rows);
    }

    /// <summary>Patch tokens (B, g*g, D) of a g x g grid averaged to (B, side*side, D).</summary>
    private static Tensor Pool(Tensor tokens, VitConfig c, int side)
    {
        using var scope = NewDisposeScope();
        int g = c.ImageSize / c.PatchSize;
        var grid = tokens.transpose(1, 2).reshape(tokens.shape[0], c.Dim, g, g);
        var pooled = nn.functional.adaptive_avg_pool2d(grid, new long[] { side, side });
        tokens.Dispose();
        return pooled.flatten(2).transpose(1, 2).contiguous().MoveToOuterDisposeScope();
    }

    public void Dispose() => Table.Dispose();
}

/// <summary>Vision–language examples with their tokenized question and answer, batched as <see cref="VlBatch"/>.</summary>
public sealed class VlExamples : IBatchSource<VlBatch>
{
    private readonly int[][] questions, answers;
    private readonly VlFeatures features;
    private readonly int pad, decoderStart;

    public IReadOnlyList<VlExample> Examples { get; }
    public int Count => Examples.Count;

    public VlExamples(IReadOnlyList<VlExample> examples, VlFeatures features, TextTokenizer tokenizer, BartConfig config)
    {
        Examples = examples;
        this.features = features;
        foreach (var e in examples)
            foreach (var im in e.Images)
                if (!features.Rows.ContainsKey(im)) throw new ArgumentException($"no features for image {im} of a {e.Task} example");
        questions = examples.Select(e => tokenizer.Encode(e.Question)).ToArray();
        answers = examples.Select(e => tokenizer.Encode(e.Answer)).ToArray();
        pad = config.PadTokenId;
        decoderStart = config.DecoderStartTokenId;
    }

    public VlBatch MakeBatch(int[] indices, Device device)
    {
        int b = indices.Length, p = features.Patches;
        int maxImages = indices.Max(i => Examples[i].Images.Count);
        int slots = maxImages * p;
        int s = indices.Max(i => questions[i].Length), t = indices.Max(i => answers[i].Length);
        int l = indices.Max(i => Examples[i].Images.Count * p + questions[i].Length);
        var rows = new long[b * maxImages];
        var text = new long[b * s];
        var layout = new long[b * l];
        var mask = new long[b * l];
        var labels = new long[b * t];
        var decoder = new long[b * t];
        for (int k = 0; k < b; k++)
        {
            var e = Examples[indices[k]];
            var q = questions[indices[k]];
            var a = answers[indices[k]];
            for (int j = 0; j < maxImages; j++) rows[k * maxImages + j] = j < e.Images.Count ? features.Rows[e.Images[j]] : features.ZeroRow;
            for (int j = 0; j < s; j++) text[k * s + j] = j < q.Length ? q[j] : pad;
            int own = e.Images.Count * p;
            for (int j = 0; j < l; j++)
            {
                (layout[k * l + j], mask[k * l + j]) = j < q.Length ? (slots + j, 1L) : j < q.Length + own ? (j - q.Length, 1L) : (0L, 0L);
            }
            for (int j = 0; j < t; j++)
            {
                labels[k * t + j] = j < a.Length ? a[j] : Seq2SeqObjective.IgnoreIndex;
                decoder[k * t + j] = j == 0 ? decoderStart : j - 1 < a.Length ? a[j - 1] : pad;
            }
        }
        using var rowIds = tensor(rows);
        using var picked = features.Table.index_select(0, rowIds);
        var image = picked.reshape(b, slots, features.Width).to(device);
        return new VlBatch(image, tensor(text, new long[] { b, s }, device: device), tensor(layout, new long[] { b, l }, device: device),
            tensor(mask, new long[] { b, l }, device: device), tensor(labels, new long[] { b, t }, device: device), tensor(decoder, new long[] { b, t }, device: device));
    }
}

/// <summary>
/// Training and judging a <see cref="VisionLanguageBart"/>: teacher-forced cross-entropy on the answer tokens; evaluation
/// generates every answer greedily and scores each task as VL-BART's tables do: exact match of the generated answer (%)
/// for the question-answering tasks, corpus BLEU-4 (sacreBLEU's 13a tokenisation) for captioning, and their mean over
/// the tasks present, which picks the best epoch (ties: lower loss).
/// </summary>
public sealed class VlObjective(Func<int[], string> decode, GenerationOptions generation) : ITrainingObjective<VlBatch>
{
    public const string MeanMetric = "mean";
    public string SelectionMetric => MeanMetric;
    /// <summary>The generated texts of the last evaluation, one per example of its set.</summary>
    public IReadOnlyList<string> LastOutputs { get; private set; } = Array.Empty<string>();

    private static VisionLanguageBart Vl(nn.Module model) => model as VisionLanguageBart
        ?? throw new ArgumentException($"the vision-language objective trains a {nameof(VisionLanguageBart)}, not a {model.GetType().Name}");

    public Tensor Loss(nn.Module model, VlBatch batch)
    {
        var logits = Vl(model).Logits(batch);
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), batch.Labels.reshape(-1), ignore_index: Seq2SeqObjective.IgnoreIndex);
    }

    public bool IsBetter(Evaluation candidate, Evaluation best) =>
        candidate.Accuracy > best.Accuracy || (candidate.Accuracy == best.Accuracy && candidate.Loss < best.Loss);

    public Evaluation Evaluate(nn.Module model, IBatchSource<VlBatch> set, int batchSize, Device device)
    {
        var vl = Vl(model);
        var examples = (set as VlExamples ?? throw new ArgumentException($"the vision-language objective evaluates {nameof(VlExamples)}")).Examples;
        model.eval();
        using var _ = no_grad();
        double lossSum = 0;
        long tokens = 0, correctTokens = 0;
        var outputs = new string[examples.Count];
        for (int start = 0; start < set.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batchSize, set.Count - start)).ToArray();
            using var batch = set.MakeBatch(idx, device);
            var logits = vl.Logits(batch);
            var flat = batch.Labels.reshape(-1);
            lossSum += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), flat, ignore_index: Seq2SeqObjective.IgnoreIndex,
                reduction: nn.Reduction.Sum).ToDouble();
            var real = flat.ne(Seq2SeqObjective.IgnoreIndex);
            tokens += real.sum().ToInt64();
            correctTokens += logits.argmax(-1).reshape(-1).eq(flat).logical_and(real).sum().ToInt64();
            using var generated = vl.Generate(batch, generation);
            for (int i = 0; i < idx.Length; i++)
            {
                var ids = generated.Sequences[i].TakeWhile(id => id != vl.Config.EosTokenId)
                    .Where(id => id != vl.Config.PadTokenId && id != vl.Config.BosTokenId && id != vl.Config.DecoderStartTokenId).ToArray();
                outputs[idx[i]] = decode(ids);
            }
        }
        LastOutputs = outputs;
        var metrics = Score(examples, outputs);
        metrics["token_accuracy"] = tokens == 0 ? 0 : (double)correctTokens / tokens;
        return new Evaluation(metrics[MeanMetric], tokens == 0 ? 0 : lossSum / tokens, set.Count) { Metrics = metrics };
    }

    /// <summary>
    /// Per task present: exact match (%) of the trimmed output with the answer, or corpus BLEU-4 for captioning; and
    /// their mean as "mean".
    /// </summary>
    public static Dictionary<string, double> Score(IReadOnlyList<VlExample> examples, IReadOnlyList<string> outputs)
    {
        var metrics = new Dictionary<string, double>();
        foreach (var task in VlTasks.Names)
        {
            var mine = Enumerable.Range(0, examples.Count).Where(i => examples[i].Task == task).ToList();
            if (mine.Count == 0) continue;
            metrics[task] = VlTasks.IsQuestionAnswering(task)
                ? 100.0 * mine.Count(i => outputs[i].Trim() == examples[i].Answer) / mine.Count
                : Bleu.Corpus(mine.Select(i => outputs[i].Trim()).ToList(), mine.Select(i => examples[i].Answer).ToList()).Score;
        }
        metrics[MeanMetric] = metrics.Count == 0 ? 0 : metrics.Values.Average();
        return metrics;
    }
}

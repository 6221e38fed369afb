using CoeffTune.Generation;
using CoeffTune.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>
/// One batch of source/target pairs for teacher forcing: source ids and mask (B, S); labels (B, T) with
/// <see cref="Seq2SeqObjective.IgnoreIndex"/> on padding; the decoder's input (B, T), the labels shifted right behind
/// the decoder start token.
/// </summary>
public sealed record Seq2SeqBatch(Tensor InputIds, Tensor AttentionMask, Tensor Labels, Tensor DecoderInputIds) : IDisposable
{
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        Labels.Dispose();
        DecoderInputIds.Dispose();
    }
}

/// <summary>One example: source ids and target ids, each with the model's special tokens (BART: bos ... eos).</summary>
public sealed record Seq2SeqExample(int[] Source, int[] Target);

/// <summary>Source/target pairs in memory, padded per batch (sources with pad and a mask, labels with the ignore index).</summary>
public sealed class Seq2SeqExamples(IReadOnlyList<Seq2SeqExample> examples, int padTokenId, int decoderStartTokenId) : IBatchSource<Seq2SeqBatch>
{
    public IReadOnlyList<Seq2SeqExample> Examples => examples;
    public int Count => examples.Count;

    public Seq2SeqBatch MakeBatch(int[] indices, Device device)
    {
        var chosen = indices.Select(i => examples[i]).ToList();
        int s = chosen.Max(e => e.Source.Length), t = chosen.Max(e => e.Target.Length), b = chosen.Count;
        var ids = new long[b * s];
        var mask = new long[b * s];
        var labels = new long[b * t];
        var decoder = new long[b * t];
        for (int i = 0; i < b; i++)
        {
            var (src, tgt) = (chosen[i].Source, chosen[i].Target);
            for (int j = 0; j < s; j++) (ids[i * s + j], mask[i * s + j]) = j < src.Length ? (src[j], 1) : (padTokenId, 0);
            for (int j = 0; j < t; j++)
            {
                labels[i * t + j] = j < tgt.Length ? tgt[j] : Seq2SeqObjective.IgnoreIndex;
                decoder[i * t + j] = j == 0 ? decoderStartTokenId : j - 1 < tgt.Length ? tgt[j - 1] : padTokenId;
            }
        }
        return new Seq2SeqBatch(tensor(ids, new long[] { b, s }, device: device), tensor(mask, new long[] { b, s }, device: device),
            tensor(labels, new long[] { b, t }, device: device), tensor(decoder, new long[] { b, t }, device: device));
    }
}

/// <summary>
/// Teacher forcing for any <see cref="ISeq2SeqModel"/>: cross-entropy of the next token over the target's real tokens
/// (padding ignored), with optional label smoothing. Evaluation reports the mean token loss and token accuracy
/// (argmax under teacher forcing) and, when it generates (<see cref="Generation"/> set), exact match and
/// sacreBLEU's corpus BLEU-4 of the generated sequences against the targets; the best epoch has the highest BLEU
/// (or token accuracy without generation), ties broken by the lower loss.
/// </summary>
public sealed class Seq2SeqObjective : ITrainingObjective<Seq2SeqBatch>
{
    public const long IgnoreIndex = -100;

    public double LabelSmoothing { get; }
    /// <summary>How evaluation generates; null: no generation (loss and token accuracy only).</summary>
    public GenerationOptions? Generation { get; }
    /// <summary>Ids to text for BLEU (special tokens skipped); null: the content ids joined by spaces.</summary>
    public Func<int[], string>? Decode { get; }
    /// <summary>Ids left out when sequences are compared (besides the model's pad, eos and decoder start), e.g. BART's bos.</summary>
    public IReadOnlySet<int> ExtraSpecialIds { get; }

    public Seq2SeqObjective(double labelSmoothing = 0, GenerationOptions? generation = null, Func<int[], string>? decode = null,
        IEnumerable<int>? extraSpecialIds = null)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing < 1))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, $"label smoothing must be in [0, 1), got {labelSmoothing}");
        LabelSmoothing = labelSmoothing;
        Generation = generation?.Validate();
        Decode = decode;
        ExtraSpecialIds = (extraSpecialIds ?? Array.Empty<int>()).ToHashSet();
    }

    public string SelectionMetric => Generation is null ? "token_accuracy" : "bleu";

    public bool IsBetter(Evaluation candidate, Evaluation best) =>
        candidate.Accuracy > best.Accuracy || (candidate.Accuracy == best.Accuracy && candidate.Loss < best.Loss);

    private static ISeq2SeqModel Model(nn.Module model) => model as ISeq2SeqModel
        ?? throw new ArgumentException($"the sequence-to-sequence objective trains an encoder-decoder, not a {model.GetType().Name}");

    private static Tensor Logits(ISeq2SeqModel m, Seq2SeqBatch batch) =>
        m.DecodeLogits(batch.DecoderInputIds, m.Encode(batch.InputIds, batch.AttentionMask), batch.AttentionMask);

    public Tensor Loss(nn.Module model, Seq2SeqBatch batch)
    {
        var logits = Logits(Model(model), batch);
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), batch.Labels.reshape(-1),
            ignore_index: IgnoreIndex, label_smoothing: LabelSmoothing);
    }

    public Evaluation Evaluate(nn.Module model, IBatchSource<Seq2SeqBatch> set, int batchSize, Device device)
    {
        var m = Model(model);
        model.eval();
        using var _ = no_grad();
        double lossSum = 0;
        long tokens = 0, correctTokens = 0, exact = 0;
        var hypotheses = new List<string>();
        var references = new List<string>();
        for (int start = 0; start < set.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batchSize, set.Count - start)).ToArray();
            using var batch = set.MakeBatch(idx, device);
            var logits = Logits(m, batch);
            var flat = batch.Labels.reshape(-1);
            lossSum += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), flat, ignore_index: IgnoreIndex,
                reduction: nn.Reduction.Sum, label_smoothing: LabelSmoothing).ToDouble();
            var real = flat.ne(IgnoreIndex);
            tokens += real.sum().ToInt64();
            correctTokens += logits.argmax(-1).reshape(-1).eq(flat).logical_and(real).sum().ToInt64();
            if (Generation is null) continue;
            using var generated = Seq2SeqGenerator.Generate(m, batch.InputIds, batch.AttentionMask, Generation);
            var labelRows = batch.Labels.cpu().data<long>().ToArray();
            long t = batch.Labels.shape[1];
            for (int i = 0; i < idx.Length; i++)
            {
                var target = Content(m, labelRows.Skip((int)(i * t)).Take((int)t).Where(v => v != IgnoreIndex).Select(v => (int)v));
                var output = Content(m, generated.Sequences[i]);
                if (target.SequenceEqual(output)) exact++;
                hypotheses.Add(Text(output));
                references.Add(Text(target));
            }
        }
        double tokenAccuracy = tokens == 0 ? 0 : (double)correctTokens / tokens;
        var metrics = new Dictionary<string, double> { ["token_accuracy"] = tokenAccuracy };
        double selection = tokenAccuracy;
        if (Generation is not null && set.Count > 0)
        {
            var bleu = Bleu.Corpus(hypotheses, references);
            metrics["exact_match"] = (double)exact / set.Count;
            metrics["bleu"] = bleu.Score;
            selection = bleu.Score;
        }
        return new Evaluation(selection, tokens == 0 ? 0 : lossSum / tokens, set.Count) { Metrics = metrics };
    }

    /// <summary>The ids up to the first EOS, without special tokens.</summary>
    private int[] Content(ISeq2SeqModel m, IEnumerable<int> ids) =>
        ids.TakeWhile(id => id != m.EosTokenId)
            .Where(id => id != m.PadTokenId && id != m.DecoderStartTokenId && id != m.ForcedBosTokenId && !ExtraSpecialIds.Contains(id)).ToArray();

    private string Text(int[] ids) => Decode is not null ? Decode(ids) : string.Join(' ', ids);
}

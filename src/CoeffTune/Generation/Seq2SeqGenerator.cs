using CoeffTune.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Generation;

/// <summary>When beam search stops for a source, as transformers' <c>early_stopping</c> says it.</summary>
public enum BeamStopping
{
    /// <summary>transformers' early_stopping=False: once it holds as many finished hypotheses as beams and the best running
    /// beam, scored at its present length, cannot beat the worst of them.</summary>
    Heuristic,
    /// <summary>early_stopping=True: as soon as it holds as many finished hypotheses as beams.</summary>
    Early,
    /// <summary>early_stopping="never": only when no running beam can beat the worst finished one at any length up to the limit.</summary>
    Never,
}

/// <summary>How to generate. Immutable; validated at construction of the generator's call.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens generated after the decoder start token, at most (EOS counted).</summary>
    public int MaxNewTokens { get; init; } = 20;
    /// <summary>EOS is not allowed before this many new tokens (transformers' min_new_tokens).</summary>
    public int MinNewTokens { get; init; }
    /// <summary>1: greedy decoding; more: beam search.</summary>
    public int NumBeams { get; init; } = 1;
    /// <summary>A finished hypothesis scores sum(log p) / length^LengthPenalty, length counting its generated tokens, EOS included.</summary>
    public double LengthPenalty { get; init; } = 1.0;
    public BeamStopping Stopping { get; init; } = BeamStopping.Heuristic;
    /// <summary>Keep each step's keys and values (true), or run the decoder over the whole sequence at every step.</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>Greedy decoding only: return every step's logits (B, steps, V).</summary>
    public bool ReturnLogits { get; init; }

    public GenerationOptions Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, $"{nameof(MaxNewTokens)} must be at least 1, got {MaxNewTokens}");
        if (MinNewTokens < 0 || MinNewTokens > MaxNewTokens)
            throw new ArgumentOutOfRangeException(nameof(MinNewTokens), MinNewTokens, $"{nameof(MinNewTokens)} must be in [0, {MaxNewTokens}], got {MinNewTokens}");
        if (NumBeams < 1) throw new ArgumentOutOfRangeException(nameof(NumBeams), NumBeams, $"{nameof(NumBeams)} must be at least 1, got {NumBeams}");
        if (!double.IsFinite(LengthPenalty)) throw new ArgumentOutOfRangeException(nameof(LengthPenalty), LengthPenalty, $"{nameof(LengthPenalty)} must be finite");
        if (ReturnLogits && NumBeams > 1) throw new ArgumentException($"{nameof(ReturnLogits)} is for greedy decoding (1 beam)");
        return this;
    }
}

/// <summary>
/// What generation produced for each source: the generated ids (after the decoder start token, up to and including
/// EOS when it came; no padding), their score (greedy: the sum of the chosen tokens' log-probabilities; beam search:
/// that sum divided by length^length_penalty), and with <see cref="GenerationOptions.ReturnLogits"/> every step's
/// logits (B, steps, V), padded rows included.
/// </summary>
public sealed class GenerationResult : IDisposable
{
    public required IReadOnlyList<int[]> Sequences { get; init; }
    public required IReadOnlyList<double> Scores { get; init; }
    public Tensor? StepLogits { get; init; }
    public void Dispose() => StepLogits?.Dispose();
}

/// <summary>
/// Greedy decoding and beam search for any <see cref="ISeq2SeqModel"/>, as transformers' <c>generate</c> does them:
/// the source is encoded once; every sequence starts with the decoder start token; a sequence that has produced EOS is
/// extended with padding until all are done; beam search keeps, per source, the top 2K continuations of its K beams,
/// sets aside those ending in EOS that rank among the top K as finished hypotheses, and continues the best K others.
/// With the cache each step runs the decoder on its new token only.
/// </summary>
public static class Seq2SeqGenerator
{
    /// <summary>Generates for source ids (B, S) with padding mask (B, S) (1 on real tokens), in evaluation mode without gradients.</summary>
    public static GenerationResult Generate(ISeq2SeqModel model, Tensor inputIds, Tensor? attentionMask, GenerationOptions options)
    {
        options.Validate();
        var module = model as nn.Module;
        bool wasTraining = module?.training ?? false;
        module?.eval();
        try
        {
            using var _ = no_grad();
            return options.NumBeams == 1 ? Greedy(model, inputIds, attentionMask, options) : Beam(model, inputIds, attentionMask, options);
        }
        finally
        {
            if (wasTraining) module!.train();
        }
    }

    /// <summary>Log-probabilities (or logits) with the tokens disallowed at this step set to minus infinity.</summary>
    private static Tensor Constrain(ISeq2SeqModel model, Tensor scores, int step, GenerationOptions o)
    {
        if (step == 0 && model.ForcedBosTokenId is { } bos)
        {
            var forced = full_like(scores, double.NegativeInfinity);
            forced[TensorIndex.Colon, bos] = scores[TensorIndex.Colon, bos];
            scores = forced;
        }
        if (step < o.MinNewTokens) scores = scores.index_fill(1, tensor(new long[] { model.EosTokenId }, device: scores.device), double.NegativeInfinity);
        return scores;
    }

    /// <summary>Next-token logits (N, V) of the sequences so far: the new token through the cache, or the whole sequence.</summary>
    private static Tensor NextLogits(ISeq2SeqModel model, List<long>[] sequences, Tensor states, Tensor? mask, KeyValueCache? cache, Device device)
    {
        int n = sequences.Length;
        Tensor ids;
        if (cache is not null)
            ids = tensor(sequences.Select(s => s[^1]).ToArray(), new long[] { n, 1 }, device: device);
        else
        {
            int t = sequences[0].Count;
            ids = tensor(sequences.SelectMany(s => s).ToArray(), new long[] { n, t }, device: device);
        }
        var logits = model.DecodeLogits(ids, states, mask, cache);
        return logits.select(1, logits.shape[1] - 1).to_type(ScalarType.Float32);
    }

    private static GenerationResult Greedy(ISeq2SeqModel model, Tensor inputIds, Tensor? mask, GenerationOptions o)
    {
        int b = (int)inputIds.shape[0];
        var device = inputIds.device;
        using var cache = o.UseCache ? new KeyValueCache() : null;
        var sequences = Enumerable.Range(0, b).Select(_ => new List<long> { model.DecoderStartTokenId }).ToArray();
        var done = new bool[b];
        var scores = new double[b];
        var stepLogits = new List<Tensor>();
        using var outer = NewDisposeScope();
        var states = model.Encode(inputIds, mask);
        for (int step = 0; step < o.MaxNewTokens && !done.All(d => d); step++)
        {
            using var scope = NewDisposeScope();
            var logits = NextLogits(model, sequences, states, mask, cache, device);
            if (o.ReturnLogits) stepLogits.Add(logits.cpu().MoveToOuterDisposeScope());
            var logp = Constrain(model, logits, step, o).log_softmax(1);
            var (best, next) = logp.max(1);
            var tokens = next.cpu().data<long>().ToArray();
            var values = best.cpu().data<float>().ToArray();
            for (int i = 0; i < b; i++)
            {
                if (done[i]) { sequences[i].Add(model.PadTokenId); continue; }
                sequences[i].Add(tokens[i]);
                scores[i] += values[i];
                if (tokens[i] == model.EosTokenId) done[i] = true;
            }
        }
        var result = new GenerationResult
        {
            Sequences = sequences.Select(Trim).ToList(),
            Scores = scores,
            StepLogits = o.ReturnLogits ? stack(stepLogits, 1).DetachFromDisposeScope() : null,
        };
        return result;

        int[] Trim(List<long> s)
        {
            var generated = s.Skip(1).ToList();
            int eos = generated.IndexOf(model.EosTokenId);
            return (eos >= 0 ? generated.Take(eos + 1) : generated).Select(t => (int)t).ToArray();
        }
    }

    /// <summary>A source's finished hypotheses, the best <c>K</c> by score.</summary>
    private sealed class Hypotheses(int beams)
    {
        public readonly List<(double Score, long[] Tokens)> Items = new();
        public double Worst => Items.Count == 0 ? double.PositiveInfinity : Items.Min(h => h.Score);

        public void Add(long[] tokens, double score)
        {
            if (Items.Count < beams || score > Worst)
            {
                Items.Add((score, tokens));
                if (Items.Count > beams) Items.RemoveAt(Items.FindIndex(h => h.Score == Worst));
            }
        }
    }

    private static double Normalise(double sum, int length, double penalty) => sum / Math.Pow(length, penalty);

    private static GenerationResult Beam(ISeq2SeqModel model, Tensor inputIds, Tensor? mask, GenerationOptions o)
    {
        int b = (int)inputIds.shape[0], k = o.NumBeams, v = model.VocabSize;
        var device = inputIds.device;
        using var cache = o.UseCache ? new KeyValueCache() : null;
        using var outer = NewDisposeScope();
        // Every beam of a source reads the same encoder states.
        var states = model.Encode(inputIds, mask).repeat_interleave(k, 0);
        var beamMask = mask?.repeat_interleave(k, 0);
        var sequences = Enumerable.Range(0, b * k).Select(_ => new List<long> { model.DecoderStartTokenId }).ToArray();
        // Only the first beam of each source is live at the start, so the first step's top K are K different tokens.
        var beamScores = Enumerable.Range(0, b * k).Select(i => i % k == 0 ? 0.0 : -1e9).ToArray();
        var hyps = Enumerable.Range(0, b).Select(_ => new Hypotheses(k)).ToArray();
        var done = new bool[b];
        int generated = 0;
        for (int step = 0; step < o.MaxNewTokens && !done.All(d => d); step++)
        {
            using var scope = NewDisposeScope();
            var logp = Constrain(model, NextLogits(model, sequences, states, beamMask, cache, device), step, o).log_softmax(1);
            var total = (logp.to_type(ScalarType.Float64) + tensor(beamScores, device: device).unsqueeze(1)).view(b, k * v);
            var (topScores, topIds) = total.topk(2 * k, 1);
            var s = topScores.cpu().data<double>().ToArray();
            var ids = topIds.cpu().data<long>().ToArray();
            var nextScores = new double[b * k];
            var nextTokens = new long[b * k];
            var source = new long[b * k];
            int length = step + 1;
            for (int i = 0; i < b; i++)
            {
                if (done[i])
                {
                    for (int j = 0; j < k; j++) (nextScores[i * k + j], nextTokens[i * k + j], source[i * k + j]) = (0, model.PadTokenId, i * k);
                    continue;
                }
                int kept = 0;
                for (int r = 0; r < 2 * k && kept < k; r++)
                {
                    double score = s[i * 2 * k + r];
                    long id = ids[i * 2 * k + r];
                    int from = i * k + (int)(id / v);
                    long token = id % v;
                    if (token == model.EosTokenId)
                    {
                        // An EOS outside the top K would end a beam that K better ones outrank.
                        if (r >= k) continue;
                        hyps[i].Add(Generated(sequences[from], token), Normalise(score, length, o.LengthPenalty));
                    }
                    else
                    {
                        (nextScores[i * k + kept], nextTokens[i * k + kept], source[i * k + kept]) = (score, token, from);
                        kept++;
                    }
                }
                double bestRunning = Enumerable.Range(0, k).Max(j => nextScores[i * k + j]);
                done[i] = IsDone(hyps[i], k, bestRunning, length, o);
            }
            sequences = Enumerable.Range(0, b * k).Select(j => new List<long>(sequences[source[j]]) { nextTokens[j] }).ToArray();
            beamScores = nextScores;
            generated = length;
            cache?.Reorder(tensor(source, device: device));
        }
        // Sources still running at the limit take their running beams as hypotheses too.
        for (int i = 0; i < b; i++)
        {
            if (done[i]) continue;
            for (int j = 0; j < k; j++)
                hyps[i].Add(sequences[i * k + j].Skip(1).ToArray(), Normalise(beamScores[i * k + j], generated, o.LengthPenalty));
        }
        var best = hyps.Select(h => h.Items.OrderByDescending(x => x.Score).First()).ToList();
        return new GenerationResult { Sequences = best.Select(h => h.Tokens.Select(t => (int)t).ToArray()).ToList(), Scores = best.Select(h => h.Score).ToList() };

        static long[] Generated(List<long> sequence, long eos) => sequence.Skip(1).Append(eos).ToArray();
    }

    private static bool IsDone(Hypotheses hyps, int beams, double bestRunningSum, int length, GenerationOptions o)
    {
        if (hyps.Items.Count < beams) return false;
        if (o.Stopping == BeamStopping.Early) return true;
        // The longest a running beam can still become; a positive penalty favours length, so the bound takes the limit.
        int bestLength = o.Stopping == BeamStopping.Never && o.LengthPenalty > 0 ? o.MaxNewTokens : length;
        return hyps.Worst >= Normalise(bestRunningSum, bestLength, o.LengthPenalty);
    }
}

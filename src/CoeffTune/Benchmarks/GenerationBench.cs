using System.Diagnostics;
using CoeffTune.Generation;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Benchmarks;

/// <summary>What the generation bench runs: the model's shape, the batch, the lengths, the beams, the repeats.</summary>
public sealed record GenerationBenchOptions
{
    /// <summary>BART-base's shape by default (d_model 768, 6 + 6 layers, 12 heads, vocabulary 50,265), random weights.</summary>
    public BartConfig Model { get; init; } = BartConfig.Base with { Dropout = 0 };
    public int Batch { get; init; } = 1;
    public int SourceTokens { get; init; } = 64;
    /// <summary>Every run generates exactly this many tokens per sequence (EOS is held back until then).</summary>
    public int NewTokens { get; init; } = 32;
    public int Beams { get; init; } = 1;
    /// <summary>Timed runs per setting (after one untimed warm-up run); the median is reported.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Also time both with Coeff-Tuning's alpha on every attention layer (the maps materialised).</summary>
    public bool WithCoeff { get; init; } = true;
    public int Seed { get; init; }

    public static GenerationBenchOptions Quick => new() { SourceTokens = 32, NewTokens = 16, Repeats = 1 };

    public GenerationBenchOptions Validate()
    {
        if (Batch < 1) throw new ArgumentOutOfRangeException(nameof(Batch), Batch, "batch must be at least 1");
        if (SourceTokens < 2 || SourceTokens > Model.MaxPositionEmbeddings) throw new ArgumentOutOfRangeException(nameof(SourceTokens), SourceTokens, $"source tokens must be in [2, {Model.MaxPositionEmbeddings}]");
        if (NewTokens < 1 || NewTokens >= Model.MaxPositionEmbeddings) throw new ArgumentOutOfRangeException(nameof(NewTokens), NewTokens, $"new tokens must be in [1, {Model.MaxPositionEmbeddings - 1}]");
        if (Beams < 1) throw new ArgumentOutOfRangeException(nameof(Beams), Beams, "beams must be at least 1");
        if (Repeats < 1) throw new ArgumentOutOfRangeException(nameof(Repeats), Repeats, "repeats must be at least 1");
        return this;
    }
}

/// <summary>One timed setting: generated tokens per second (batch x new tokens x beams kept, per wall-clock second).</summary>
public sealed record GenerationBenchRow(string Setting, bool Cache, double Seconds, double TokensPerSecond);

/// <summary>
/// Decoding speed with and without the key/value cache on a BART-base-shaped model: the same source, the same number
/// of new tokens (EOS held back), greedy or beam search, timed after a warm-up, median of the repeats. Without the
/// cache every step runs the decoder over the whole sequence so far, so its cost grows with the square of the length.
/// </summary>
public static class GenerationBench
{
    public static IReadOnlyList<GenerationBenchRow> Run(GenerationBenchOptions options, TextWriter? log = null)
    {
        options.Validate();
        torch.manual_seed(options.Seed);
        using var model = new BartForConditionalGeneration(options.Model);
        model.eval();
        var c = options.Model;
        using var ids = randint(4, c.VocabSize, new long[] { options.Batch, options.SourceTokens });
        using var mask = ones(options.Batch, options.SourceTokens, ScalarType.Int64);
        long parameters = model.parameters().Sum(p => p.numel());
        log?.WriteLine($"BART d_model {c.DModel}, {c.EncoderLayers}+{c.DecoderLayers} layers, {c.EncoderAttentionHeads} heads, vocabulary {c.VocabSize:N0}: " +
            $"{parameters:N0} parameters (random); batch {options.Batch}, {options.SourceTokens} source tokens, {options.NewTokens} new tokens, " +
            $"{options.Beams} beam(s), {torch.get_num_threads()} threads");
        var rows = new List<GenerationBenchRow>();
        var settings = new List<string> { "base" };
        if (options.WithCoeff) settings.Add("coeff");
        foreach (var setting in settings)
        {
            if (setting == "coeff") PeftModel.Wrap(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), new CoeffConfig());
            foreach (bool cache in new[] { true, false })
            {
                var generation = new GenerationOptions
                {
                    MaxNewTokens = options.NewTokens, MinNewTokens = options.NewTokens, NumBeams = options.Beams, UseCache = cache,
                };
                var times = new List<double>();
                for (int r = 0; r <= options.Repeats; r++)
                {
                    var clock = Stopwatch.StartNew();
                    using var result = Seq2SeqGenerator.Generate(model, ids, mask, generation);
                    clock.Stop();
                    if (result.Sequences.Any(s => s.Length != options.NewTokens))
                        throw new InvalidOperationException($"a run generated {result.Sequences.Min(s => s.Length)} tokens instead of {options.NewTokens}");
                    if (r > 0) times.Add(clock.Elapsed.TotalSeconds);   // run 0 warms up
                }
                double median = times.Order().ElementAt(times.Count / 2);
                var row = new GenerationBenchRow(setting, cache, median, options.Batch * options.NewTokens / median);
                rows.Add(row);
                log?.WriteLine($"  {setting,-6} {(cache ? "cache   " : "no cache")}: {row.TokensPerSecond,8:0.0} tokens/s ({row.Seconds:0.000} s a run)");
            }
        }
        return rows;
    }
}

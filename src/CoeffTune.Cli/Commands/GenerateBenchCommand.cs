using System.CommandLine;
using CoeffTune.Benchmarks;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench generate</c>: decoding speed with and without the key/value cache on a BART-base-shaped model.</summary>
public static class GenerateBenchCommand
{
    private static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        [nameof(GenerationBenchOptions.Batch)] = "--batch", [nameof(GenerationBenchOptions.SourceTokens)] = "--source-tokens",
        [nameof(GenerationBenchOptions.NewTokens)] = "--new-tokens", [nameof(GenerationBenchOptions.Beams)] = "--beams",
        [nameof(GenerationBenchOptions.Repeats)] = "--repeats",
    };

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "32 source tokens, 16 new tokens, one timed run" };
        var batch = new Option<int?>("--batch") { Description = "sources decoded together (default 1)" };
        var source = new Option<int?>("--source-tokens") { Description = "source length (default 64)" };
        var newTokens = new Option<int?>("--new-tokens") { Description = "tokens generated per source, EOS held back (default 32)" };
        var beams = new Option<int?>("--beams") { Description = "beams (default 1: greedy)" };
        var repeats = new Option<int?>("--repeats") { Description = "timed runs per setting after a warm-up; the median is reported (default 3)" };
        var noCoeff = new Option<bool>("--no-coeff") { Description = "skip the runs with Coeff-Tuning's alpha on every attention" };
        var cmd = new Command("generate", "Tokens per second of BART-base-shaped generation (random weights) with and without the key/value cache")
            { quick, batch, source, newTokens, beams, repeats, noCoeff };
        cmd.SetAction(p =>
        {
            var o = p.GetValue(quick) ? GenerationBenchOptions.Quick : new GenerationBenchOptions();
            o = o with
            {
                Batch = p.GetValue(batch) ?? o.Batch, SourceTokens = p.GetValue(source) ?? o.SourceTokens, NewTokens = p.GetValue(newTokens) ?? o.NewTokens,
                Beams = p.GetValue(beams) ?? o.Beams, Repeats = p.GetValue(repeats) ?? o.Repeats, WithCoeff = !p.GetValue(noCoeff),
            };
            var rows = Cli.WithFlags(Flags, () => GenerationBench.Run(o.Validate(), Console.Out));
            foreach (var setting in rows.GroupBy(r => r.Setting))
            {
                var cached = setting.Single(r => r.Cache);
                var uncached = setting.Single(r => !r.Cache);
                Console.WriteLine($"{setting.Key}: the cache is {cached.TokensPerSecond / uncached.TokensPerSecond:0.0}x as fast ({cached.TokensPerSecond:0.0} vs {uncached.TokensPerSecond:0.0} tokens/s)");
            }
            return 0;
        });
        return cmd;
    }
}

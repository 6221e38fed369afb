using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Tests.Data;
using CoeffTune.Text;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Training;

/// <summary>The quick BART pretrained here (pretrained on first use, then cached) reads its source, as a denoiser must.</summary>
[Collection(RealDataCollection.Name)]
public sealed class PretrainedBartTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>
    /// Teacher-forced loss on held-out Brown passages, corrupted as in pretraining, against the same targets given another
    /// passage's source. A decoder that ignores its encoder scores both alike (the failure the copying drill prevents).
    /// </summary>
    [Fact]
    public void The_quick_bart_predicts_held_out_text_better_from_its_own_corrupted_source_than_from_another()
    {
        var bart = BartPretraining.Ensure(BartPretrainOptions.Quick);
        var (model, _) = BartCheckpoint.Load(bart.Folder);
        using (model)
        {
            using var tokenizer = TextTokenizer.FromFolder(bart.Folder, 64);
            var c = model.Config;
            int mask = c.VocabSize - 1;      // <mask> is the vocabulary's last token
            var texts = TaskCatalog.Load("brown").TextTest.Texts.Take(64).ToList();
            var own = texts.Select((t, i) =>
            {
                var ids = tokenizer.Encode(t);
                return BartPretraining.Corrupt([ids[1..^1]], new Random(i), mask, c.BosTokenId, c.EosTokenId);
            }).ToList();
            var swapped = own.Select((e, i) => e with { Source = own[(i + 1) % own.Count].Source }).ToList();
            var objective = new Seq2SeqObjective();
            double Loss(List<Seq2SeqExample> set) => objective.Evaluate(model, new Seq2SeqExamples(set, c.PadTokenId, c.DecoderStartTokenId), 16, CPU).Loss;
            double matched = Loss(own), mismatched = Loss(swapped);
            output.WriteLine($"held-out loss per token: own source {matched:F3}, another passage's source {mismatched:F3}");
            Assert.True(mismatched - matched > 0.5, $"own source {matched:F3}, another's {mismatched:F3}: the decoder barely reads its source");
        }
    }
}

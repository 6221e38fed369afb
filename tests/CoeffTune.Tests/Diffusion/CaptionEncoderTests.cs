using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Diffusion;
using CoeffTune.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Diffusion;

/// <summary>The frozen caption encoder on the real all-MiniLM-L6-v2.</summary>
[Collection(RealModelsCollection.Name)]
public sealed class CaptionEncoderTests(RealModelsFixture models)
{
    [SkippableFact]
    public void States_are_minilms_last_hidden_states_whatever_the_batch_and_cached_per_caption()
    {
        models.RequireAsset("minilm");
        using var encoder = CaptionEncoder.MiniLM(AssetCache.Default);
        Assert.Equal(384, encoder.Width);
        using var alone = encoder.Encode(["a photo of a dress"]);
        Assert.Equal(1, encoder.CachedCaptions);
        // [CLS] a photo of a dress [SEP]
        Assert.Equal(new long[] { 1, 7, 384 }, alone.States.shape);

        var bert = PretrainedModels.LoadBert("minilm", classes: 1, cache: AssetCache.Default);
        bert.Model.eval();
        using (no_grad())
        {
            using var batch = bert.Tokenizer.EncodeBatch(["a photo of a dress"]);
            using var reference = bert.Model.Encode(batch.Inputs, batch.AttentionMask);
            Assert.True(TestUtil.MaxAbsDiff(reference, alone.States) < 1e-6);
        }

        using var together = encoder.Encode(["an inverted image of the digit three", "a photo of a dress", "", "a photo of a dress"]);
        Assert.Equal(3, encoder.CachedCaptions);
        // [CLS] an inverted image of the digit three [SEP]: 9 tokens, the longest.
        Assert.Equal(9, together.Length);
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 0, 0 }, together.Mask[1].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 0, 0, 0, 0, 0, 0, 0 }, together.Mask[2].data<long>().ToArray());
        Assert.True(TestUtil.MaxAbsDiff(together.States[1, TensorIndex.Slice(0, 7)], alone.States[0]) == 0);
        Assert.Equal(0.0, together.States[1, TensorIndex.Slice(7)].abs().sum().ToDouble());
        Assert.All(bert.Model.parameters(), p => Assert.True(p.requires_grad));   // another instance: the encoder froze only its own
    }
}
